"""Auth: services' identities as signed tokens (JWT), and scopes checked before handlers run.

A caller (a client, a service, ``eventkit call``) sends a token on every call and event; a
service that holds an :class:`Auth` verifies it before the request or event is decoded, and
refuses with :class:`~eventkit.wire.Unauthorized` (401) or :class:`~eventkit.wire.Forbidden`
(403). :class:`Key` loads a shared secret (HS256) or a PEM key (EdDSA, RS256, ES256). PyJWT
(the ``auth`` extra) is imported only when an :class:`Auth` is made or a token minted. This
package knows only the wire; see docs/security.md.
"""

from ._auth import POLICIES, Auth, Guard, Policy
from ._keys import ALGORITHMS, MIN_SECRET_BYTES, Key, generate_key, load_key, read_key_file
from ._tokens import Identity

__all__ = [
    "ALGORITHMS",
    "MIN_SECRET_BYTES",
    "POLICIES",
    "Auth",
    "Guard",
    "Identity",
    "Key",
    "Policy",
    "generate_key",
    "load_key",
    "read_key_file",
]
