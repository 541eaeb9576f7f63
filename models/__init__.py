"""segsync's domain: accounts, segments, publishing rules and enrichment values.

The only package that knows the product rules; it imports neither `connectors` nor `worker`.
"""
