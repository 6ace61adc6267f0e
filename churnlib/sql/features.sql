-- churnlib feature definitions: one row per user, computed only from that user's events strictly
-- before the observation date. The column meanings and units are in churnlib.features.FEATURE_DICTIONARY.
--
-- Input relation : events  (Sparkify schema: ts epoch ms, userId, sessionId, page, level, location,
--                           userAgent, gender, artist, song, length s, registration epoch ms,
--                           itemInSession)
-- Parameter      : $as_of  (BIGINT, observation date in epoch ms; Spark SQL spells it :as_of)
--
-- Portability: plain CTEs, CASE-based conditional aggregates (no FILTER clause), max_by/min_by,
-- median, lag/lead, and epoch-millisecond arithmetic instead of engine-specific date functions.
-- Spark SQL runs this same text as translated by churnlib.spark_sql.to_spark (sqlglot, plus
-- decimal literals read as doubles); tests/test_spark_features.py checks both engines agree.
-- "Latest non-null value" is written max_by(x, CASE WHEN x IS NOT NULL THEN ord END): DuckDB's
-- max_by skips a NULL x by itself, Spark's returns it; both skip a NULL ordering value.
-- Windows are 24-hour buckets counted back from as_of: day_back 0 = [as_of - 1 d, as_of).

WITH
-- The leakage gate: user rows strictly before as_of, label pages removed.
ev AS (
    SELECT
        CAST(userId AS STRING) AS user_id,
        CAST(sessionId AS BIGINT) AS session_id,
        CAST(ts AS BIGINT) AS ts,
        page,
        level,
        location,
        userAgent AS user_agent,
        gender,
        artist,
        song,
        CAST(length AS DOUBLE) AS song_seconds,
        CAST(registration AS DOUBLE) AS registration,
        CAST(itemInSession AS BIGINT) AS item,
        -- ordering key for "latest value" picks: ts, tie-broken by position in the session
        CAST(ts AS BIGINT) * 4096 + least(CAST(itemInSession AS BIGINT), 4095) AS ord,
        CAST(floor(($as_of - 1 - CAST(ts AS BIGINT)) / 86400000.0) AS BIGINT) AS day_back,
        CAST(floor((CAST(ts AS BIGINT) % 86400000) / 3600000.0) AS BIGINT) AS hour_utc,
        -- 1970-01-01 was a Thursday: (days since epoch + 4) mod 7 gives 0 = Sunday ... 6 = Saturday
        (CAST(floor(CAST(ts AS BIGINT) / 86400000.0) AS BIGINT) + 4) % 7 AS weekday
    FROM events
    WHERE CAST(ts AS BIGINT) < $as_of
      AND userId IS NOT NULL
      AND CAST(userId AS STRING) <> ''
      AND page NOT IN ('Cancel', 'Cancellation Confirmation')
),

-- Per-user totals, windowed counts, page counts and the latest context values.
user_events AS (
    SELECT
        user_id,
        count(*) AS events_total,
        sum(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END) AS songs_total,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        max(CASE WHEN page = 'NextSong' THEN ts END) AS last_song_ts,
        max(registration) AS registration,
        max_by(level, CASE WHEN level IS NOT NULL THEN ord END) AS level_now,
        max_by(user_agent, CASE WHEN user_agent IS NOT NULL THEN ord END) AS user_agent,
        max_by(location, CASE WHEN location IS NOT NULL THEN ord END) AS location,
        max_by(gender, CASE WHEN gender IS NOT NULL THEN ord END) AS gender,
        sum(CASE WHEN day_back < 7 THEN 1 ELSE 0 END) AS events_7d,
        sum(CASE WHEN day_back >= 7 AND day_back < 14 THEN 1 ELSE 0 END) AS events_prev_7d,
        sum(CASE WHEN day_back < 14 THEN 1 ELSE 0 END) AS events_14d,
        sum(CASE WHEN day_back >= 14 AND day_back < 28 THEN 1 ELSE 0 END) AS events_prev_14d,
        sum(CASE WHEN day_back < 30 THEN 1 ELSE 0 END) AS events_30d,
        sum(CASE WHEN day_back < 7 AND page = 'NextSong' THEN 1 ELSE 0 END) AS songs_7d,
        sum(CASE WHEN day_back < 14 AND page = 'NextSong' THEN 1 ELSE 0 END) AS songs_14d,
        sum(CASE WHEN day_back < 30 AND page = 'NextSong' THEN 1 ELSE 0 END) AS songs_30d,
        sum(CASE WHEN page = 'Thumbs Up' THEN 1 ELSE 0 END) AS thumbs_up,
        sum(CASE WHEN page = 'Thumbs Down' THEN 1 ELSE 0 END) AS thumbs_down,
        sum(CASE WHEN page = 'Add Friend' THEN 1 ELSE 0 END) AS add_friend,
        sum(CASE WHEN page = 'Add to Playlist' THEN 1 ELSE 0 END) AS add_to_playlist,
        sum(CASE WHEN page = 'Roll Advert' THEN 1 ELSE 0 END) AS roll_advert,
        sum(CASE WHEN page = 'Error' THEN 1 ELSE 0 END) AS error,
        sum(CASE WHEN page = 'Help' THEN 1 ELSE 0 END) AS help,
        sum(CASE WHEN page = 'Settings' THEN 1 ELSE 0 END) AS settings,
        sum(CASE WHEN page = 'Save Settings' THEN 1 ELSE 0 END) AS save_settings,
        sum(CASE WHEN page = 'Upgrade' THEN 1 ELSE 0 END) AS upgrade,
        sum(CASE WHEN page = 'Submit Upgrade' THEN 1 ELSE 0 END) AS submit_upgrade,
        sum(CASE WHEN page = 'Downgrade' THEN 1 ELSE 0 END) AS downgrade,
        sum(CASE WHEN page = 'Submit Downgrade' THEN 1 ELSE 0 END) AS submit_downgrade,
        sum(CASE WHEN day_back < 30 AND page = 'Help' THEN 1 ELSE 0 END) AS help_30d,
        sum(CASE WHEN day_back < 30 AND page = 'Error' THEN 1 ELSE 0 END) AS error_30d,
        sum(CASE WHEN hour_utc < 6 THEN 1 ELSE 0 END) AS events_night,
        sum(CASE WHEN hour_utc >= 6 AND hour_utc < 12 THEN 1 ELSE 0 END) AS events_morning,
        sum(CASE WHEN hour_utc >= 12 AND hour_utc < 18 THEN 1 ELSE 0 END) AS events_afternoon,
        sum(CASE WHEN hour_utc >= 18 THEN 1 ELSE 0 END) AS events_evening,
        sum(CASE WHEN weekday IN (0, 6) THEN 1 ELSE 0 END) AS events_weekend
    FROM ev
    GROUP BY user_id
),

-- One row per session. A song ends `length` seconds after it starts; nothing counts past as_of.
sessions AS (
    SELECT
        user_id,
        session_id,
        min(ts) AS start_ts,
        least(max(ts + CASE WHEN page = 'NextSong'
                            THEN CAST(floor(coalesce(song_seconds, 0) * 1000) AS BIGINT) ELSE 0 END),
              $as_of) AS end_ts,
        sum(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END) AS n_songs,
        min(day_back) AS last_day_back,
        max(day_back) AS first_day_back,
        min_by(level, CASE WHEN level IS NOT NULL THEN ord END) AS first_level,
        max_by(level, CASE WHEN level IS NOT NULL THEN ord END) AS last_level
    FROM ev
    GROUP BY user_id, session_id
),

session_seq AS (
    SELECT
        s.*,
        lag(end_ts) OVER (PARTITION BY user_id ORDER BY start_ts, session_id) AS prev_end_ts,
        lag(last_level) OVER (PARTITION BY user_id ORDER BY start_ts, session_id) AS prev_level,
        lead(start_ts) OVER (PARTITION BY user_id ORDER BY start_ts, session_id) AS next_start_ts
    FROM sessions AS s
),

user_sessions AS (
    SELECT
        user_id,
        count(*) AS n_sessions,
        sum(end_ts - start_ts) / 3600000.0 AS session_hours_total,
        avg((end_ts - start_ts) / 60000.0) AS session_minutes_mean,
        median((end_ts - start_ts) / 60000.0) AS session_minutes_median,
        avg(n_songs) AS songs_per_session,
        avg(CASE WHEN prev_end_ts IS NOT NULL
                 THEN greatest(start_ts - prev_end_ts, 0) / 3600000.0 END) AS session_gap_hours_mean,
        median(CASE WHEN prev_end_ts IS NOT NULL
                    THEN greatest(start_ts - prev_end_ts, 0) / 3600000.0 END) AS session_gap_hours_median,
        max(start_ts) AS last_login_ts,
        -- a session is "in" a window if it has an event there; a login is a session start
        sum(CASE WHEN last_day_back < 7 THEN 1 ELSE 0 END) AS sessions_7d,
        sum(CASE WHEN last_day_back < 14 THEN 1 ELSE 0 END) AS sessions_14d,
        sum(CASE WHEN last_day_back < 30 THEN 1 ELSE 0 END) AS sessions_30d,
        sum(CASE WHEN first_day_back < 30 THEN 1 ELSE 0 END) AS logins_30d,
        sum(CASE WHEN first_day_back < 14 THEN 1 ELSE 0 END) AS logins_14d,
        sum(CASE WHEN first_day_back >= 14 AND first_day_back < 28 THEN 1 ELSE 0 END) AS logins_prev_14d,
        -- level changes: within a session (first vs last level) and between consecutive sessions
        sum(CASE WHEN first_level <> last_level THEN 1 ELSE 0 END
            + CASE WHEN prev_level IS NOT NULL AND prev_level <> first_level THEN 1 ELSE 0 END)
            AS level_changes,
        -- a session's closing level holds from its start until the next session (or as_of)
        sum(CASE WHEN last_level = 'paid'
                 THEN coalesce(next_start_ts, $as_of) - start_ts ELSE 0 END) / 86400000.0 AS days_as_paid
    FROM session_seq
    GROUP BY user_id
),

-- Active days (24-hour buckets before as_of with at least one event) and weekly activity.
daily AS (
    SELECT user_id, day_back, count(*) AS n_events
    FROM ev
    GROUP BY user_id, day_back
),

user_daily AS (
    SELECT
        user_id,
        sum(CASE WHEN day_back < 7 THEN 1 ELSE 0 END) AS active_days_7d,
        sum(CASE WHEN day_back < 14 THEN 1 ELSE 0 END) AS active_days_14d,
        sum(CASE WHEN day_back < 30 THEN 1 ELSE 0 END) AS active_days_30d,
        CAST(floor(max(day_back) / 7.0) AS BIGINT) AS first_week_back
    FROM daily
    GROUP BY user_id
),

weeks AS (
    SELECT week_back FROM (VALUES (0), (1), (2), (3)) AS w(week_back)
),

-- Events per week over the last four weeks, zero-filled, from the user's first week on.
weekly AS (
    SELECT u.user_id, w.week_back, coalesce(sum(d.n_events), 0) AS n_events
    FROM user_daily AS u
    CROSS JOIN weeks AS w
    LEFT JOIN daily AS d
        ON d.user_id = u.user_id AND CAST(floor(d.day_back / 7.0) AS BIGINT) = w.week_back
    WHERE w.week_back <= u.first_week_back
    GROUP BY u.user_id, w.week_back
),

user_weekly AS (
    SELECT
        user_id,
        -- least-squares slope and sample sd from exact integer sums (x = -week_back), so the
        -- result does not depend on the order partial aggregates are combined in
        (count(*) * sum(-week_back * n_events) - sum(-week_back) * sum(n_events))
            / nullif(count(*) * sum(week_back * week_back) - sum(week_back) * sum(week_back), 0)
            AS weekly_events_slope,
        sqrt((count(*) * sum(n_events * n_events) - sum(n_events) * sum(n_events))
             / nullif(count(*) * (count(*) - 1), 0))
            / nullif(sum(n_events) / count(*), 0) AS weekly_events_cv
    FROM weekly
    GROUP BY user_id
),

-- Songs with the next song of the same session: a skip is a song followed by the next song
-- before its length has elapsed.
songs AS (
    SELECT
        user_id,
        day_back,
        coalesce(song_seconds, 0) AS song_seconds,
        CAST(round(coalesce(song_seconds, 0) * 1000000) AS BIGINT) AS song_us,
        CASE WHEN lead(ts) OVER (PARTITION BY user_id, session_id ORDER BY ts, item)
                  < ts + coalesce(song_seconds, 0) * 1000
             THEN 1 ELSE 0 END AS skipped
    FROM ev
    WHERE page = 'NextSong'
),

user_songs AS (
    SELECT
        user_id,
        -- summed as integer microseconds: a float sum depends on the order the threads add in,
        -- an integer one does not (same input -> bit-identical features)
        sum(song_us) / 3600000000.0 AS listening_hours_total,
        sum(CASE WHEN day_back < 7 THEN song_us ELSE 0 END) / 3600000000.0 AS listening_hours_7d,
        sum(CASE WHEN day_back >= 7 AND day_back < 14 THEN song_us ELSE 0 END) / 3600000000.0
            AS listening_hours_prev_7d,
        sum(CASE WHEN day_back < 30 THEN song_us ELSE 0 END) / 3600000000.0 AS listening_hours_30d,
        sum(skipped) AS skips_total,
        sum(CASE WHEN day_back < 7 THEN skipped ELSE 0 END) AS skips_7d,
        sum(CASE WHEN day_back >= 7 AND day_back < 14 THEN skipped ELSE 0 END) AS skips_prev_7d,
        sum(CASE WHEN day_back >= 7 AND day_back < 14 THEN 1 ELSE 0 END) AS songs_prev_7d
    FROM songs
    GROUP BY user_id
),

-- Content diversity: plays per (artist, song), then per artist.
song_plays AS (
    SELECT user_id, artist, song, count(*) AS plays
    FROM ev
    WHERE page = 'NextSong'
    GROUP BY user_id, artist, song
),

artist_plays AS (
    SELECT user_id, artist, sum(plays) AS plays, count(*) AS n_songs
    FROM song_plays
    GROUP BY user_id, artist
),

user_diversity AS (
    SELECT
        user_id,
        sum(n_songs) AS unique_songs,
        count(artist) AS unique_artists,
        max(CASE WHEN artist IS NOT NULL THEN plays END) / nullif(sum(plays), 0) AS top_artist_share
    FROM artist_plays
    GROUP BY user_id
)

SELECT
    e.user_id AS userId,
    -- tenure
    ($as_of - e.registration) / 86400000.0 AS tenure_days,
    ($as_of - e.first_ts) / 86400000.0 AS history_days,
    -- recency
    ($as_of - e.last_ts) / 86400000.0 AS days_since_last_event,
    ($as_of - e.last_song_ts) / 86400000.0 AS days_since_last_song,
    ($as_of - s.last_login_ts) / 86400000.0 AS days_since_last_login,
    -- frequency
    e.events_7d, e.events_14d, e.events_30d,
    e.songs_7d, e.songs_14d, e.songs_30d,
    s.sessions_7d, s.sessions_14d, s.sessions_30d,
    d.active_days_7d, d.active_days_14d, d.active_days_30d,
    s.logins_30d AS login_frequency_30d,
    -- sessions
    s.n_sessions,
    s.session_minutes_mean,
    s.session_minutes_median,
    s.songs_per_session,
    s.session_gap_hours_mean,
    s.session_gap_hours_median,
    -- listening
    e.events_total,
    e.songs_total,
    coalesce(so.listening_hours_total, 0) AS listening_hours_total,
    coalesce(so.listening_hours_7d, 0) AS listening_hours_7d,
    coalesce(so.listening_hours_30d, 0) AS listening_hours_30d,
    -- page counts, per song and per session-hour
    e.thumbs_up, e.thumbs_up / nullif(e.songs_total, 0) AS thumbs_up_per_song,
    e.thumbs_up / nullif(s.session_hours_total, 0) AS thumbs_up_per_session_hour,
    e.thumbs_down, e.thumbs_down / nullif(e.songs_total, 0) AS thumbs_down_per_song,
    e.thumbs_down / nullif(s.session_hours_total, 0) AS thumbs_down_per_session_hour,
    e.add_friend, e.add_friend / nullif(e.songs_total, 0) AS add_friend_per_song,
    e.add_friend / nullif(s.session_hours_total, 0) AS add_friend_per_session_hour,
    e.add_to_playlist, e.add_to_playlist / nullif(e.songs_total, 0) AS add_to_playlist_per_song,
    e.add_to_playlist / nullif(s.session_hours_total, 0) AS add_to_playlist_per_session_hour,
    e.roll_advert, e.roll_advert / nullif(e.songs_total, 0) AS roll_advert_per_song,
    e.roll_advert / nullif(s.session_hours_total, 0) AS roll_advert_per_session_hour,
    e.error, e.error / nullif(e.songs_total, 0) AS error_per_song,
    e.error / nullif(s.session_hours_total, 0) AS error_per_session_hour,
    e.help, e.help / nullif(e.songs_total, 0) AS help_per_song,
    e.help / nullif(s.session_hours_total, 0) AS help_per_session_hour,
    e.settings, e.settings / nullif(e.songs_total, 0) AS settings_per_song,
    e.settings / nullif(s.session_hours_total, 0) AS settings_per_session_hour,
    e.save_settings, e.save_settings / nullif(e.songs_total, 0) AS save_settings_per_song,
    e.save_settings / nullif(s.session_hours_total, 0) AS save_settings_per_session_hour,
    e.upgrade, e.upgrade / nullif(e.songs_total, 0) AS upgrade_per_song,
    e.upgrade / nullif(s.session_hours_total, 0) AS upgrade_per_session_hour,
    e.submit_upgrade, e.submit_upgrade / nullif(e.songs_total, 0) AS submit_upgrade_per_song,
    e.submit_upgrade / nullif(s.session_hours_total, 0) AS submit_upgrade_per_session_hour,
    e.downgrade, e.downgrade / nullif(e.songs_total, 0) AS downgrade_per_song,
    e.downgrade / nullif(s.session_hours_total, 0) AS downgrade_per_session_hour,
    e.submit_downgrade, e.submit_downgrade / nullif(e.songs_total, 0) AS submit_downgrade_per_song,
    e.submit_downgrade / nullif(s.session_hours_total, 0) AS submit_downgrade_per_session_hour,
    -- support and reliability (named signals)
    e.help_30d AS customer_support_contact_30d,
    e.error_30d AS app_crash_count_30d,
    -- ratios
    e.thumbs_up / nullif(e.thumbs_up + e.thumbs_down, 0) AS thumbs_up_share,
    so.skips_total,
    so.skips_total / nullif(e.songs_total, 0) AS skip_rate,
    so.skips_7d / nullif(e.songs_7d, 0) AS skip_rate_7d,
    -- content diversity
    dv.unique_songs,
    dv.unique_artists,
    dv.unique_songs / nullif(s.n_sessions, 0) AS unique_songs_per_session,
    dv.unique_artists / nullif(s.n_sessions, 0) AS unique_artists_per_session,
    dv.top_artist_share,
    -- subscription
    CASE WHEN e.level_now = 'paid' THEN 1 ELSE 0 END AS level_paid,
    s.days_as_paid,
    s.level_changes,
    -- trends: symmetric relative change (a - b) / (a + b), 0 when both windows are empty
    coalesce((e.events_7d - e.events_prev_7d) / nullif(e.events_7d + e.events_prev_7d, 0), 0)
        AS events_trend_7d,
    coalesce((so.listening_hours_7d - so.listening_hours_prev_7d)
             / nullif(so.listening_hours_7d + so.listening_hours_prev_7d, 0), 0)
        AS listening_time_trend_7d,
    coalesce((s.logins_14d - s.logins_prev_14d) / nullif(s.logins_14d + s.logins_prev_14d, 0), 0)
        AS freq_of_use_trend_14d,
    coalesce((e.events_14d - e.events_prev_14d) / nullif(e.events_14d + e.events_prev_14d, 0), 0)
        AS events_trend_14d,
    so.skips_7d / nullif(e.songs_7d, 0) - so.skips_prev_7d / nullif(so.songs_prev_7d, 0)
        AS skip_rate_increase_7d,
    w.weekly_events_slope,
    w.weekly_events_cv,
    e.events_night / e.events_total AS night_share,
    e.events_morning / e.events_total AS morning_share,
    e.events_afternoon / e.events_total AS afternoon_share,
    e.events_evening / e.events_total AS evening_share,
    e.events_weekend / e.events_total AS weekend_share,
    -- context (from the latest event)
    CASE
        WHEN e.user_agent LIKE '%iPad%' THEN 'tablet'
        WHEN e.user_agent LIKE '%iPhone%' OR e.user_agent LIKE '%Android%'
             OR e.user_agent LIKE '%Mobile%' THEN 'mobile'
        WHEN e.user_agent IS NULL THEN 'unknown'
        ELSE 'desktop'
    END AS device_type,
    CASE
        WHEN e.user_agent LIKE '%iPhone%' OR e.user_agent LIKE '%iPad%' THEN 'iOS'
        WHEN e.user_agent LIKE '%Android%' THEN 'Android'
        WHEN e.user_agent LIKE '%Windows%' THEN 'Windows'
        WHEN e.user_agent LIKE '%Macintosh%' THEN 'macOS'
        WHEN e.user_agent LIKE '%Linux%' THEN 'Linux'
        ELSE 'unknown'
    END AS os,
    CASE
        WHEN e.user_agent LIKE '%Firefox%' THEN 'Firefox'
        WHEN e.user_agent LIKE '%MSIE%' OR e.user_agent LIKE '%Trident%' THEN 'Internet Explorer'
        WHEN e.user_agent LIKE '%Chrome%' THEN 'Chrome'
        WHEN e.user_agent LIKE '%Safari%' THEN 'Safari'
        ELSE 'unknown'
    END AS browser,
    -- "City, ST" or "City-City, ST-ST": the first state after the comma
    coalesce(CASE WHEN instr(e.location, ', ') > 0
                  THEN substr(e.location, instr(e.location, ', ') + 2, 2) END, 'unknown') AS state,
    coalesce(e.gender, 'unknown') AS gender
FROM user_events AS e
LEFT JOIN user_sessions AS s ON s.user_id = e.user_id
LEFT JOIN user_daily AS d ON d.user_id = e.user_id
LEFT JOIN user_weekly AS w ON w.user_id = e.user_id
LEFT JOIN user_songs AS so ON so.user_id = e.user_id
LEFT JOIN user_diversity AS dv ON dv.user_id = e.user_id
ORDER BY userId
