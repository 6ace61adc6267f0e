"""The Sparkify event-log schema: columns, pages and the method/status each page is served with.

Shared by the loader (validation), the simulator (generation) and the label step, so that all three
agree on one definition.
"""
from __future__ import annotations

__all__ = ["AUTH_VALUES", "CHURN_PAGE", "EVENT_COLUMNS", "KNOWN_PAGES", "LABEL_PAGES", "LEVEL_VALUES", "MS_PER_DAY",
           "MS_PER_HOUR", "PAGE_METHOD_STATUS", "REQUIRED_EVENT_COLUMNS", "SNAPSHOT_DEFAULT_ID",
           "SNAPSHOT_DEFAULT_LABEL"]

#: Columns of a Sparkify event log, in the order the public logs use.
EVENT_COLUMNS: tuple[str, ...] = (
    "ts", "userId", "sessionId", "page", "auth", "method", "status", "level", "itemInSession",
    "location", "userAgent", "firstName", "lastName", "registration", "gender", "artist", "song",
    "length",
)

#: Columns without which an event log cannot be used at all.
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = ("ts", "userId", "sessionId", "page")

#: Every page a Sparkify log serves, with the HTTP method and status Sparkify logs for it.
PAGE_METHOD_STATUS: dict[str, tuple[str, int]] = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Thumbs Up": ("PUT", 307),
    "Thumbs Down": ("PUT", 307),
    "Add to Playlist": ("PUT", 200),
    "Add Friend": ("PUT", 307),
    "Roll Advert": ("GET", 200),
    "Logout": ("PUT", 307),
    "Login": ("PUT", 307),
    "Settings": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Help": ("GET", 200),
    "About": ("GET", 200),
    "Upgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Submit Downgrade": ("PUT", 307),
    "Error": ("GET", 404),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
}

KNOWN_PAGES: frozenset[str] = frozenset(PAGE_METHOD_STATUS)

#: Pages that define the churn label: they must never feed a feature.
LABEL_PAGES: frozenset[str] = frozenset({"Cancel", "Cancellation Confirmation"})

#: The page whose visit marks a user as churned.
CHURN_PAGE = "Cancellation Confirmation"

AUTH_VALUES: frozenset[str] = frozenset({"Logged In", "Logged Out", "Guest", "Cancelled"})
LEVEL_VALUES: frozenset[str] = frozenset({"free", "paid"})

#: Columns of a snapshot table that are not features by default.
SNAPSHOT_DEFAULT_ID = "user_id"
SNAPSHOT_DEFAULT_LABEL = "is_churned"

#: Milliseconds in a day and in an hour (event timestamps are epoch milliseconds).
MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
