"""What the HTML book serves itself so that it works offline (see :mod:`offline_book`)."""
