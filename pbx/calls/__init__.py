"""Calls between extensions: the B2BUA's edge (service) and its pure parts (media plan, CDR)."""
