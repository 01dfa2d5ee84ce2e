"""nova-conductor: the only path from compute to the database."""
