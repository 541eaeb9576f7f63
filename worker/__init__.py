"""The sync worker and the `segsync` command line, on top of `models` and `connectors`."""
