"""MorphNet: resize a residual backbone to a FLOPs, size or latency budget (docs/morphnet.md)."""
