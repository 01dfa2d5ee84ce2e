"""The OpenStack Compute API v2.1 (:8774): app.py is the framework, one module per resource."""
