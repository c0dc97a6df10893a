"""Agent names and request ids: the character sets and lengths of docs/protocol.md section 3.

A name never contains '/', so the request id '<agent>/<label>' names its agent unambiguously:
one agent's label can never produce another agent's id. Pure module.
"""

from __future__ import annotations

MAX_NAME_LEN = 64
MAX_LABEL_LEN = 128
MAX_REQUEST_ID_LEN = MAX_NAME_LEN + 1 + MAX_LABEL_LEN  # '<agent>/<label>'
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # no '/', no spaces; first a letter or digit
LABEL_PATTERN = r"[A-Za-z0-9._:/-]+"  # no '#' (internal ids use it), no spaces
