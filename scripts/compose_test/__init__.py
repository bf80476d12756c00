"""The compose test: the users' docker-compose.yml brought up for real, on local stand-in images.

``python -m scripts.compose_test`` (``make compose-test``, and CI through
tests/compose/test_compose_stack.py) installs and starts a Docker engine where none runs,
builds stand-ins for the official base images from Debian's packages (they cannot be pulled
here), builds the project's image, runs docker-compose.yml with an override that only swaps image
names, checks the running stack and removes everything it made. See ``__main__`` for the steps.
"""
