"""Images: the IImageService seam, the built-in store and API, and the Glance v2 client."""
