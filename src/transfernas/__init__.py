"""transfernas: transferable, meta-learned neural architecture search as Kedro pipelines."""

__version__ = "0.1.0"
