"""The image seam: what compute and the APIs ask of an image service.

Two implementations pass one contract suite: the Glance v2 HTTP client
(any Glance v2 endpoint, ours included) and the built-in store.

Images are dicts shaped as Glance v2 shows them: ``id``, ``name``,
``status`` (queued, saving, active, killed, deleted), ``visibility``,
``owner``, ``disk_format``, ``container_format``, ``size``,
``checksum`` (md5), ``os_hash_algo``, ``os_hash_value`` (sha512),
``min_disk``, ``min_ram``, ``protected``, ``tags``, ``created_at``,
``updated_at``, and every extra property (``kernel_id``, ``hw_*``, ...)
as a top-level key.
"""

from zope.interface import Interface


class IImageService(Interface):
    """Images for one caller; ``ctxt`` (RequestContext) says who asks.

    Every method returns a Deferred. Errors: ImageNotFound (also for an
    image the caller may not see), Forbidden (visible but not the caller's
    to change, or an admin-only change such as making an image public),
    Invalid, Conflict, OverLimit (size cap, too many properties or tags).
    Owner is the caller's project; admins see and change every image.
    Property values are strings (Invalid otherwise), as in Glance.
    """

    def show(ctxt, image_id):
        """Deferred firing with the image dict."""

    def list(ctxt, filters=None, limit=None, marker=None, sort_key="created_at", sort_dir="desc"):
        """Deferred firing with a list of image dicts the caller may see.

        ``filters`` use Glance's query names: name, id, status, owner,
        disk_format, container_format (exact or ``in:a,b``), visibility
        (public, private, shared, community, all), member_status, tag (one
        or a list, all required), size_min, size_max, protected, os_hidden,
        created_at/updated_at (``gte:<iso time>`` ...), and any other key as
        an exact property match. ``limit=None`` means every match; ``marker``
        is the id of the last image of the previous page. ``sort_key`` and
        ``sort_dir`` may each be a list."""

    def create(ctxt, metadata):
        """Create a queued image from ``metadata`` (Glance's create body:
        name, id, disk_format, container_format, visibility, min_disk,
        min_ram, protected, tags, and string properties); Deferred firing
        with the image dict. Forbidden for read-only attributes (status,
        size, checksum, ...)."""

    def update(ctxt, image_id, changes, remove=()):
        """Set the keys in ``changes`` and remove the properties named in
        ``remove`` (removing an absent one is a no-op); Deferred firing with
        the image dict."""

    def upload(ctxt, image_id, path):
        """Stream the file at ``path`` into the image (queued -> saving ->
        active; killed if the upload fails). Never holds the file in memory.
        Deferred firing with the image dict. Conflict unless queued; Invalid
        unless disk_format and container_format are set."""

    def download(ctxt, image_id, path):
        """Stream the image's data into a new file at ``path``. Deferred firing
        with ``{"size", "checksum", "os_hash_algo", "os_hash_value"}``
        computed while writing (the caller compares them with show()'s).
        Conflict if the image has no data (not active)."""

    def delete(ctxt, image_id):
        """Delete the image and its data; Deferred. Conflict if protected."""
