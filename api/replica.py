"""A read replica's process state (``civicpulse serve --replica-of STORE``, #22).

The replica serves the API from the newest snapshot that the primary publishes beside its store
(``analyzer.store.replica``), read-only, and checks keys against the primary's key file, so a key
revoked on the primary is refused here from its next request on. Every write (and ``/v1/keys``)
is refused by the gateway with 403 ``read_only_replica``, naming the primary: writes go there.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from analyzer.cli.common import owner_file
from analyzer.config import Settings
from analyzer.store.database import Store
from analyzer.store.replica import KeyFile, Snapshot, key_file, snapshot_file
from api.keys import ApiKey, verify_key_file
from api.state import AppState


class ReplicaState(AppState):
    """``AppState`` of a read replica of the store at ``replica_of``."""

    read_only = True

    def __init__(self, settings: Settings, replica_of: Path, primary_url: str | None = None):
        self.replica_of = Path(replica_of).expanduser().resolve()
        self.snapshot = Snapshot(snapshot_file(self.replica_of))
        self.keys = KeyFile(key_file(self.replica_of))
        self.primary_url = primary_url
        super().__init__(settings.with_overrides(store_path=self.snapshot.path))

    @property
    def store(self) -> Store:
        """The newest snapshot, read-only (reopened when a newer one has been published)."""
        return self.snapshot.store()

    def verify_key(self, key: str) -> ApiKey | None:
        return verify_key_file(self.keys, key)

    def primary(self) -> str | None:
        """Where writes go: ``--primary-url``, else the URL in the primary's owner file (when it
        is readable here)."""
        if self.primary_url:
            return self.primary_url
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return str(json.loads(owner_file(self.replica_of).read_text(encoding="utf-8"))["url"])
        return None

    def refusal(self) -> str:
        """The one line a write gets here."""
        where = self.primary()
        to = f"the primary at {where}" if where else "the primary (`civicpulse serve`)"
        return f"this API is a read-only replica; send writes and key management to {to}"

    def close(self) -> None:
        self.tagger.close()
        self.snapshot.close()
