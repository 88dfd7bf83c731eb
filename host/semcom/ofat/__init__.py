"""OFAT: the frame layout, reconstruction and channel model (numpy; torch where stated)."""
