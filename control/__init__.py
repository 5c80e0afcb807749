"""The control plane: the service's mutable state, apart from the index.

API keys, document ACL overrides, quarantine, the pause switch and the policy file are each
kept in one file under data_dir (the embedded default). Every change is a read-modify-write
under a cross-process lock (control/state_file.py), so a CLI edit and an API edit made at the
same moment are both kept; every reader re-reads a file when it changes, so a change made by
one process is in force in the others from their next request.
"""
