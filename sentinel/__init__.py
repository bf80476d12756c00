"""The ``sentinel`` command's composition root (see ``sentinel.cli``)."""
