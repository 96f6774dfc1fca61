"""Marshmallow schemas of ``POST /admin/sync-users``: its query and the sync report it answers."""

from __future__ import annotations

from marshmallow import Schema, fields

from hub.schemas.fields import LenientSchema, String


class SyncUsersQuery(LenientSchema):
    dryRun = fields.Boolean(
        load_default=False, metadata={"description": "Compute the diff; write and send nothing."}
    )
    platform = String(metadata={"description": "Sync only this platform."})


class SyncedUserOut(Schema):
    globalId = String()
    name = String()
    oldName = String(metadata={"description": "Renamed users: the name before."})


class PlatformSyncOut(Schema):
    platform = String()
    created = fields.List(fields.Nested(SyncedUserOut))
    renamed = fields.List(fields.Nested(SyncedUserOut))
    vanished = fields.List(
        fields.Nested(SyncedUserOut),
        metadata={
            "description": "Known users the platform no longer lists (deleted only with "
            "HUB_SYNC_DELETE_VANISHED)."
        },
    )
    invalid = fields.List(String(), metadata={"description": "Entries skipped, and why."})
    error = String(
        allow_none=True,
        metadata={"description": "Why the platform was skipped (down, garbage answer)."},
    )


class SyncReportOut(Schema):
    dryRun = fields.Boolean()
    deleteVanished = fields.Boolean()
    startedAt = String()
    finishedAt = String(allow_none=True)
    platforms = fields.List(fields.Nested(PlatformSyncOut))
