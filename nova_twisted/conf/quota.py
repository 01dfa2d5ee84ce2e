"""[quota]: default limits of every project (the admin may change them per project)."""

from nova_twisted.conf.types import IntOpt

SECTION = "quota"
_DEFAULTS = [
    ("instances", 10, "servers"),
    ("cores", 20, "vCPUs of all servers"),
    ("ram", 51200, "MiB of RAM of all servers"),
    ("metadata_items", 128, "metadata items per server"),
    ("key_pairs", 100, "key pairs per user"),
    ("server_groups", 10, "server groups"),
    ("server_group_members", 10, "servers per server group"),
    ("injected_files", 5, "injected files per server"),
    ("injected_file_content_bytes", 10240, "bytes per injected file"),
    ("injected_file_path_bytes", 255, "bytes per injected file path"),
]
OPTS = [
    IntOpt(name, default=default, min=-1, help=f"Default limit of {what} per project (-1: unlimited).")
    for name, default, what in _DEFAULTS
]
