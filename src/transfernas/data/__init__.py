"""Sub-dataset builder: ImageNet class sampling, fast decode + resize, shards and manifests."""
