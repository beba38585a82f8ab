"""One module per family of input formats; each parser turns one raw row into a :class:`Comparison`.

The registry that names them, :data:`rewardlab.data.formats.FORMAT_SPECS`, is the one place a format is added.
"""
