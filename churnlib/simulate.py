"""Simulate Sparkify-schema event logs (deterministic for a seed).

The model combines the two public designs the project looked at, written from scratch:

* **Within a session** (after eventsim): a listening loop. After each song the user may visit a
  handful of non-song pages (thumbs, playlist, friends, home, settings, help, adverts for free
  users, upgrade/downgrade pages, errors, mid-session logouts) with per-song rates that depend on the
  user's level, traits and current satisfaction; the session ends after a geometric number of songs.
  Sessions start with a logged-out ``Home``/``Login`` prefix (rows with an empty ``userId``) most of
  the time, end with a ``Logout`` most of the time, and arrive as a Poisson process thinned by a
  night/weekend weight.
* **Across sessions** (after the "Fighting Churn With Data" simulator): correlated log-normal
  behaviour traits per user (activity, session length, thumbs, sociability, ad tolerance, taste
  breadth) and a latent satisfaction that follows an AR(1) driven by the user's experience (thumbs
  down, adverts while free, errors, skipped songs). The daily churn hazard rises as satisfaction
  falls; once a user decides to leave, most users disengage for a few sessions first (fewer and
  shorter sessions, more thumbs down, help and downgrade visits), some do not (silent churn), and a
  share of churn is unrelated to satisfaction. The last session ends with ``Cancel`` and
  ``Cancellation Confirmation`` (auth ``Cancelled``), after which the user has no events.

The per-event work runs in one Numba-compiled loop (``cache=True``). Every user draws from its own
random stream, seeded from ``numpy.random.SeedSequence(seed)``, so a user's events do not depend on
how users are split into chunks; ``sessionId`` is a running counter over users in order, so the
whole output is identical for any ``chunk_users`` (and for any ``n_jobs``: chunks simulated in
parallel threads get their session ids shifted into that running order).

The song catalogue is drawn from ``seed`` too, so two seeds are two services. To draw a *new window
of the same service* -- fresh users over the reference log's catalogue, as drift monitoring needs --
pass the reference seed as ``catalogue_seed`` (and ``id_offset`` to keep the user ids apart).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnlib.files import atomic_write, new_file_mode
from churnlib.schema import EVENT_COLUMNS, MS_PER_DAY, MS_PER_HOUR, PAGE_METHOD_STATUS

__all__ = ["SimulatorConfig", "event_chunks", "simulate_events", "write_event_log", "write_partitioned_log",
           "PAGES"]

#: Page codes used inside the kernel (index into this tuple).
PAGES: tuple[str, ...] = (
    "NextSong", "Thumbs Up", "Thumbs Down", "Add to Playlist", "Add Friend", "Home", "Settings",
    "Help", "About", "Error", "Roll Advert", "Upgrade", "Downgrade", "Logout", "Save Settings",
    "Submit Upgrade", "Submit Downgrade", "Login", "Register", "Submit Registration", "Cancel",
    "Cancellation Confirmation",
)
(PG_SONG, PG_TUP, PG_TDOWN, PG_PLAYLIST, PG_FRIEND, PG_HOME, PG_SETTINGS, PG_HELP, PG_ABOUT,
 PG_ERROR, PG_ADVERT, PG_UPGRADE, PG_DOWNGRADE, PG_LOGOUT, PG_SAVE, PG_SUB_UP, PG_SUB_DOWN,
 PG_LOGIN, PG_REGISTER, PG_SUB_REG, PG_CANCEL, PG_CONFIRM) = range(len(PAGES))
#: Pages drawn between songs (the first N_EXTRA codes after NextSong).
N_EXTRA = 13  # codes 1..13: Thumbs Up .. Logout

AUTHS: tuple[str, ...] = ("Logged In", "Logged Out", "Guest", "Cancelled")
AU_IN, AU_OUT, AU_GUEST, AU_CANCELLED = range(4)
LEVELS: tuple[str, ...] = ("free", "paid")


@dataclass
class SimulatorConfig:
    """Calibrated parameters of the event simulator.

    Targets are the per-user aggregates of the real Sparkify mini log
    (``sparkify_mini_user_features.csv.gz``: 225 users, about 60 days, 52 churned). Rates called
    "per song" are expected visits of that page between two songs.
    """

    # --- activity (sessions) -------------------------------------------------------------------
    #: median sessions per day of a paid user before churn and level effects; calibrated so the
    #: median session_count is the mini log's 10 (13 for users ever paid) after free users' lower
    #: rate, cancellations and the disengagement before them.
    session_rate_median: float = 0.31
    #: log-sd of the per-user session rate; with Poisson noise gives session_count IQR 6-18 as in
    #: the mini log (larger values make the count_items tail heavier than the real one).
    session_rate_sigma: float = 0.55
    #: free users come back less often (mini log: never-paid users median 5 sessions).
    free_rate_mult: float = 0.60
    #: median songs per session of a paid user; calibrated to the mini log's median
    #: avg_songs_session of 64 overall (77 for users ever paid, whose log mixes free sessions).
    songs_per_session_median: float = 93.0
    #: log-sd of the per-user session length (avg_songs_session IQR 36-92 overall).
    songs_per_session_sigma: float = 0.25
    #: free sessions are shorter (mini log: never-paid median avg_songs_session 27.5).
    free_songs_mult: float = 0.45
    #: correlation of the activity and session-length traits. 0: the level (paid users come back
    #: more and listen longer) already correlates them about as much as the mini log shows.
    act_len_corr: float = 0.0
    #: share of a weekday's session arrival rate at weekends (eventsim damps weekends).
    weekend_weight: float = 0.80
    #: arrival weight at the quietest night hour relative to the evening peak (US local time).
    night_weight: float = 0.25

    # --- level, registration ----------------------------------------------------------------------
    #: share of users already paid at the start (mini log: 34/225 users paid without submitting an
    #: upgrade); with the upgrade rate below gives the real ever-paid share of 0.73.
    p_paid_start: float = 0.29
    #: share of users who register during the window (mini log: 18 Register rows for 225 users).
    p_new_user: float = 0.04
    #: Upgrade page visits per song while free; with submit_upgrade_prob, free users upgrade after
    #: ~250 songs, so most free users upgrade within 60 days (131/225 did in the mini log).
    upgrade_page: float = 0.008
    #: chance an Upgrade visit ends in Submit Upgrade (times exp(0.3 satisfaction)).
    submit_upgrade_prob: float = 0.5
    #: Downgrade page visits per song while paid (mini log: paid median downgrade_rate 0.13/h).
    downgrade_page: float = 0.0095
    #: chance a Downgrade visit ends in Submit Downgrade (63 of 2,055 visits in the mini log).
    submit_downgrade_prob: float = 0.03

    # --- pages between songs (expected visits per song) -------------------------------------------
    #: mini log: 12,551 Thumbs Up / 228,108 songs = 0.055 (multiplied by exp(0.1 s) per user).
    thumbs_up: float = 0.052
    #: mini log: 2,546 / 228,108 = 0.011, of which off-taste songs and dissatisfaction add ~20%.
    thumbs_down: float = 0.0080
    #: mini log: 6,526 / 228,108.
    add_playlist: float = 0.0286
    #: mini log: 4,277 / 228,108.
    add_friend: float = 0.0188
    #: mid-session Home visits (plus about half a session-start Home per session): 10,082 total.
    home: float = 0.039
    #: mini log: 1,514 Settings; a fifth of them lead to Save Settings (310).
    settings: float = 0.0066
    save_settings_prob: float = 0.20
    #: mini log: 1,454 Help, 495 About, 252 Error.
    help: float = 0.0062
    about: float = 0.0022
    error: float = 0.0011
    #: adverts per song for a free user; calibrated to the Roll Advert page share (1.41%) and the
    #: advert_rate distribution (never-paid median 1.3/h).
    advert_free: float = 0.11
    #: paid users almost never see adverts.
    advert_paid: float = 0.001
    #: mid-session Logout per song (each followed by logged-out Home and Login rows).
    logout_mid: float = 0.0035
    #: chance a session ends with Logout (mini log: 3,226 Logouts for 3,176 sessions).
    logout_end_prob: float = 0.75
    #: chance a session starts with a logged-out Home/Login prefix (empty userId rows are ~3% of
    #: the real logs: 8,346 of 286,500 in the mini log, 286 of 8,056 in the sample).
    logged_out_prefix_prob: float = 0.85
    #: chance the first logged-in row of a session is Home (as in the real sample).
    session_home_prob: float = 0.45
    #: chance a song is skipped (played only partly): an experience that lowers satisfaction.
    skip_prob: float = 0.02
    #: non-song pages take little time: mean seconds before the next row.
    nonsong_gap_s: float = 1.0

    # --- per-user trait spread -------------------------------------------------------------------
    #: log-sd of the thumbs-up / thumbs-down / social / help multipliers (rate IQRs of the mini log
    #: are mostly count noise, so these are small).
    thumbs_sigma: float = 0.12
    social_sigma: float = 0.30
    help_sigma: float = 0.10
    ad_sigma: float = 0.20
    #: log-sd of a per-user error multiplier (device, network): error-prone users get unhappy.
    error_sigma: float = 0.8
    #: ad tolerance ~ Beta(a, b): how little adverts hurt satisfaction.
    ad_tolerance_a: float = 2.0
    ad_tolerance_b: float = 2.0
    #: taste breadth ~ Beta(a, b): share of songs picked off the popularity curve (uniformly);
    #: those off-taste songs are thumbed down more often.
    breadth_a: float = 1.5
    breadth_b: float = 6.0
    offtaste_thumbs_down_mult: float = 2.0

    # --- satisfaction ----------------------------------------------------------------------------
    #: initial satisfaction ~ N(0, sat0_sigma).
    sat0_sigma: float = 1.0
    #: AR(1) persistence of satisfaction from session to session.
    sat_rho: float = 0.9
    #: session-to-session noise of satisfaction.
    sat_noise: float = 0.25
    #: how strongly the bad-experience rate per song (thumbs down, adverts the user does not
    #: tolerate, errors, skipped songs) pulls satisfaction down.
    sat_bad_weight: float = 12.0
    #: weights of one advert (times 1 - ad tolerance) and one error in the bad-experience count
    #: (a thumbs down counts 1, a skipped song 0.5).
    sat_advert_weight: float = 1.0
    sat_error_weight: float = 10.0
    #: bad-experience rate per song regarded as neutral.
    sat_bad_ref: float = 0.04
    #: how satisfaction scales behaviour: exp(+k s) on session rate/length, exp(-k s) on thumbs
    #: down, help and downgrade visits.
    sat_rate_k: float = 0.4
    sat_len_k: float = 0.10
    sat_thumbs_down_k: float = 0.6
    sat_help_k: float = 0.5
    sat_downgrade_k: float = 0.40

    # --- churn -----------------------------------------------------------------------------------
    #: daily hazard of deciding to leave at satisfaction 0; calibrated to ~23% of users cancelling
    #: within 60 days (mini log 52/225).
    hazard_base: float = 0.0027
    #: hazard multiplier per unit of dissatisfaction: hazard * exp(-k s). Together with the
    #: leaving phase this sets how learnable churn is (honest ROC-AUC ~0.8 at the defaults).
    hazard_sat_k: float = 3.0
    #: log-sd of a per-user hazard multiplier (unobserved reasons to leave).
    hazard_sigma: float = 0.5
    #: daily hazard of leaving for no visible reason (independent of satisfaction).
    hazard_silent: float = 0.0004
    #: days between deciding to leave and cancelling ~ Gamma(shape, mean): disengagement is
    #: visible for a few weeks before most cancellations (shape > 1: rarely within days). The user
    #: comes back to cancel at the end of that time even without another reason to visit.
    leaving_days_mean: float = 21.0
    leaving_days_shape: float = 3.0
    #: share of leavers who show no decline at all before cancelling.
    leaving_silent_prob: float = 0.10
    #: disengagement while leaving: session-rate, session-length, thumbs-down, help and
    #: downgrade-page multipliers.
    leaving_rate_mult: float = 0.20
    leaving_len_mult: float = 0.5
    leaving_thumbs_down_mult: float = 2.5
    leaving_help_mult: float = 2.0
    leaving_downgrade_mult: float = 3.0

    # --- catalogue -------------------------------------------------------------------------------
    n_songs: int = 40_000
    n_artists: int = 12_000
    #: Zipf-like exponent of song popularity (long tail).
    song_popularity_exponent: float = 0.9
    #: song length ~ log-normal; median 232 s with log-sd 0.38 gives mean ~249 s as in Sparkify.
    song_length_median_s: float = 232.0
    song_length_sigma: float = 0.38

    def _params(self) -> np.ndarray:
        return np.array([float(getattr(self, f.name)) for f in dataclasses.fields(self)],
                        dtype=np.float64)


_FIELDS = [f.name for f in dataclasses.fields(SimulatorConfig)]
# Parameter indices as module constants (Numba freezes globals as compile-time constants).
(P_RATE_MED, P_RATE_SIG, P_FREE_RATE, P_LEN_MED, P_LEN_SIG, P_FREE_LEN, P_ACT_LEN_CORR, P_WEEKEND,
 P_NIGHT, P_PAID0, P_NEW, P_UPG_PAGE, P_SUB_UP, P_DG_PAGE, P_SUB_DOWN, P_TUP, P_TDOWN, P_PLAYLIST,
 P_FRIEND, P_HOME, P_SETTINGS, P_SAVE, P_HELP, P_ABOUT, P_ERROR, P_AD_FREE, P_AD_PAID, P_LOGOUT_MID,
 P_LOGOUT_END, P_LO_PREFIX, P_SESSION_HOME, P_SKIP, P_GAP, P_THUMBS_SIG, P_SOCIAL_SIG, P_HELP_SIG,
 P_AD_SIG, P_ERR_SIG, P_ADTOL_A, P_ADTOL_B, P_BREADTH_A, P_BREADTH_B, P_OFFTASTE_TD, P_SAT0, P_SAT_RHO,
 P_SAT_NOISE, P_SAT_BAD_W, P_SAT_AD_W, P_SAT_ERR_W, P_SAT_BAD_REF, P_SAT_RATE_K, P_SAT_LEN_K, P_SAT_TD_K, P_SAT_HELP_K,
 P_SAT_DG_K, P_HAZ_BASE, P_HAZ_SAT_K, P_HAZ_SIG, P_HAZ_SILENT, P_LEAVE_DAYS, P_LEAVE_SHAPE, P_LEAVE_SILENT,
 P_LEAVE_RATE, P_LEAVE_LEN, P_LEAVE_TD, P_LEAVE_HELP, P_LEAVE_DG, P_N_SONGS, P_N_ARTISTS,
 P_POP_EXP, P_LEN_MED_S, P_LEN_SIG_S) = range(len(_FIELDS))
# the constants above follow the field order: guard it where fields were inserted later
assert [_FIELDS[i] for i in (P_RATE_MED, P_AD_SIG, P_ERR_SIG, P_SAT_AD_W, P_SAT_ERR_W,
                             P_LEAVE_DAYS, P_LEAVE_SHAPE, P_LEN_SIG_S)] == [
    "session_rate_median", "ad_sigma", "error_sigma", "sat_advert_weight", "sat_error_weight",
    "leaving_days_mean", "leaving_days_shape", "song_length_sigma"]


# ------------------------------------------------------------------------------------------------
# metadata lists (invented names; real US metro areas; real-looking browser user agents)
# ------------------------------------------------------------------------------------------------
_FIRST_F = ("Emma Olivia Ava Sophia Isabella Mia Amelia Harper Evelyn Abigail Emily Ella Madison "
            "Avery Sofia Camila Aria Scarlett Victoria Grace Chloe Riley Zoey Nora Lily Hannah "
            "Layla Brooklyn Kaylee Addison Natalie Leah Savannah Audrey Claire Lucy Anna Samantha "
            "Allison Sarah Stella Maya Naomi Alexa Ariana Faith Julia Kylie Katherine Jessica "
            "Brianna Morgan Jasmine Alyssa Kimberly Ashley Destiny Megan").split()
_FIRST_M = ("Liam Noah William James Oliver Benjamin Elijah Lucas Mason Logan Alexander Ethan "
            "Jacob Michael Daniel Henry Jackson Sebastian Aiden Matthew Samuel David Joseph Carter "
            "Owen Wyatt John Jack Luke Jayden Dylan Grayson Levi Isaac Gabriel Julian Mateo "
            "Anthony Jaxon Lincoln Joshua Christopher Andrew Theodore Caleb Ryan Asher Nathan "
            "Thomas Leo Isaiah Charles Josiah Hudson Christian Hunter Connor Eli Ezra Aaron Walter "
            "Colin Brandon Tyler Austin Cody").split()
_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
         "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
         "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
         "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts "
         "Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris "
         "Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly "
         "Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza "
         "Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Frye "
         "Summers Hayes Bryant Graham Barnes Fisher Henderson Coleman Simmons Patterson").split()
# (metro area, population weight in millions, roughly)
_LOCATIONS = (
    ("New York-Newark-Jersey City, NY-NJ-PA", 20.2), ("Los Angeles-Long Beach-Anaheim, CA", 13.3),
    ("Chicago-Naperville-Elgin, IL-IN-WI", 9.5), ("Dallas-Fort Worth-Arlington, TX", 7.4),
    ("Houston-The Woodlands-Sugar Land, TX", 6.9), ("Washington-Arlington-Alexandria, DC-VA-MD-WV", 6.2),
    ("Miami-Fort Lauderdale-West Palm Beach, FL", 6.2), ("Philadelphia-Camden-Wilmington, PA-NJ-DE-MD", 6.1),
    ("Atlanta-Sandy Springs-Roswell, GA", 5.9), ("Boston-Cambridge-Newton, MA-NH", 4.8),
    ("Phoenix-Mesa-Scottsdale, AZ", 4.8), ("San Francisco-Oakland-Hayward, CA", 4.7),
    ("Riverside-San Bernardino-Ontario, CA", 4.6), ("Detroit-Warren-Dearborn, MI", 4.3),
    ("Seattle-Tacoma-Bellevue, WA", 3.9), ("Minneapolis-St. Paul-Bloomington, MN-WI", 3.6),
    ("San Diego-Carlsbad, CA", 3.3), ("Tampa-St. Petersburg-Clearwater, FL", 3.1),
    ("Denver-Aurora-Lakewood, CO", 2.9), ("St. Louis, MO-IL", 2.8),
    ("Baltimore-Columbia-Towson, MD", 2.8), ("Charlotte-Concord-Gastonia, NC-SC", 2.6),
    ("Orlando-Kissimmee-Sanford, FL", 2.5), ("San Antonio-New Braunfels, TX", 2.5),
    ("Portland-Vancouver-Hillsboro, OR-WA", 2.5), ("Sacramento--Roseville--Arden-Arcade, CA", 2.3),
    ("Pittsburgh, PA", 2.3), ("Las Vegas-Henderson-Paradise, NV", 2.2),
    ("Austin-Round Rock, TX", 2.1), ("Cincinnati, OH-KY-IN", 2.2), ("Kansas City, MO-KS", 2.1),
    ("Columbus, OH", 2.1), ("Cleveland-Elyria, OH", 2.1), ("Indianapolis-Carmel-Anderson, IN", 2.0),
    ("San Jose-Sunnyvale-Santa Clara, CA", 2.0), ("Nashville-Davidson--Murfreesboro--Franklin, TN", 1.9),
    ("Virginia Beach-Norfolk-Newport News, VA-NC", 1.7), ("Providence-Warwick, RI-MA", 1.6),
    ("Milwaukee-Waukesha-West Allis, WI", 1.6), ("Jacksonville, FL", 1.5),
    ("Memphis, TN-MS-AR", 1.3), ("Raleigh, NC", 1.3), ("Louisville/Jefferson County, KY-IN", 1.3),
    ("Salt Lake City, UT", 1.2), ("Birmingham-Hoover, AL", 1.1), ("Buffalo-Cheektowaga-Niagara Falls, NY", 1.1),
    ("Tucson, AZ", 1.0), ("Albany-Schenectady-Troy, NY", 0.9), ("Bakersfield, CA", 0.9),
    ("Boise City, ID", 0.7), ("Anchorage, AK", 0.4), ("Bozeman, MT", 0.1),
)
# (user agent, weight)
_USER_AGENTS = (
    ('Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
     'Chrome/36.0.1985.143 Safari/537.36', 10.0),
    ('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
     'Chrome/36.0.1985.143 Safari/537.36', 8.0),
    ('Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0', 6.0),
    ('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) '
     'Version/7.0.5 Safari/537.77.4', 6.0),
    ('Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
     'Chrome/36.0.1985.143 Safari/537.36', 5.0),
    ('Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko', 4.0),
    ('Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like '
     'Gecko) Version/7.0 Mobile/11D257 Safari/9537.53', 4.0),
    ('Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
     'Chrome/37.0.2062.103 Safari/537.36', 4.0),
    ('Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0', 2.0),
    ('Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)', 2.0),
    ('Mozilla/5.0 (iPad; CPU OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) '
     'Version/7.0 Mobile/11D257 Safari/9537.53', 2.0),
    ('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '
     'Chrome/36.0.1985.125 Safari/537.36', 1.5),
    ('Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0', 2.0),
    ('Mozilla/5.0 (Windows NT 6.3; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0', 1.5),
)

_SYLLABLES = ("ka ri mo la ne sa to vi den ar el an jo mi ra lu ce ta bo ny ze ro ha ki do "
              "mar tin bel gar son ley wen dor val fen cal bri").split()
_WORDS = ("Love Night Heart Fire Rain Dream Light Blue Stone River Home Gold Summer Wild Run "
          "Dance Shadow Sky Ocean Road Time Lost Song Sweet Baby Girl Boy City Moon Sun Star "
          "Hold Forever Crazy Young Free Little Broken Black White Red Burning Falling Rising "
          "Midnight Morning Highway Thunder Velvet Silver Electric Golden Paper Glass Echo Ghost "
          "Hands Eyes Soul Body Angel Devil Storm Wind Winter Spring Kiss Tears Story Secret "
          "Memories Paradise Radio Satellite Mirror Diamond Dust Waves Horizon Wonder").split()
_ARTIST_SUFFIX = ("", "", "", "", " Band", " Project", " Collective", " Trio", " & The Echoes",
                  " Orchestra", " Crew", " Sound")


def _unique(names: np.ndarray, suffixes: tuple[str, ...]) -> np.ndarray:
    """Make names unique by suffixing repeats (as a real catalogue would name them).

    Unique dictionaries also matter for the writer: Arrow writes a dictionary array whose
    dictionary holds duplicates non-deterministically.
    """
    k = pd.Series(names).groupby(names).cumcount().to_numpy()
    out = names.copy()
    for i in np.flatnonzero(k):
        j = k[i] - 1
        out[i] = names[i] + (suffixes[j] if j < len(suffixes) else f" ({j + 2})")
    assert len(set(out)) == len(out)
    return out


def _catalogue(cfg: SimulatorConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                         np.ndarray, np.ndarray]:
    """Generate the song/artist catalogue, songs sorted by popularity (rank 0 most popular).

    Returns song titles, artist names, song -> artist index, song lengths (s) and the cumulative
    popularity distribution over songs.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA7A]))
    n_songs, n_artists = int(cfg.n_songs), int(cfg.n_artists)
    syl = np.array(_SYLLABLES)
    words = np.array(_WORDS)
    # artist names: 1-2 capitalised invented words (+ optional suffix); duplicates are harmless
    a1 = ["".join(s).capitalize() for s in syl[rng.integers(0, len(syl), (n_artists, 3))]]
    a2 = ["".join(s).capitalize() for s in syl[rng.integers(0, len(syl), (n_artists, 2))]]
    two = rng.random(n_artists) < 0.6
    suf = np.array(_ARTIST_SUFFIX)[rng.integers(0, len(_ARTIST_SUFFIX), n_artists)]
    artists = np.array([f"{x} {y}{s}" if t else f"{x}{s}" for x, y, s, t in zip(a1, a2, suf, two)],
                       dtype=object)
    nw = rng.choice([1, 2, 2, 3, 3, 4], size=n_songs)
    widx = rng.integers(0, len(words), (n_songs, 4))
    titles = np.array([" ".join(words[widx[i, :nw[i]]]) for i in range(n_songs)], dtype=object)
    # songs of popular artists are popular: artist index drawn from a Zipf-like law, and the song
    # rank order then follows the artist order loosely
    titles = _unique(titles, (" (Live)", " (Remix)", " (Acoustic)", " II", " (Radio Edit)",
                              " (Demo)", " (Reprise)"))
    artists = _unique(artists, (" Jr.", " II", " & Friends", " Experience"))
    aw = 1.0 / np.arange(1, n_artists + 1) ** 0.8
    song_artist = np.sort(rng.choice(n_artists, size=n_songs, p=aw / aw.sum())).astype(np.int32)
    lengths = np.round(cfg.song_length_median_s * np.exp(cfg.song_length_sigma
                                                         * rng.standard_normal(n_songs)), 5)
    lengths = np.clip(lengths, 30.0, 1800.0)
    pop = 1.0 / (np.arange(n_songs) + 10.0) ** cfg.song_popularity_exponent
    cdf = np.cumsum(pop / pop.sum())
    cdf[-1] = 1.0
    return titles, artists, song_artist, lengths, cdf


# ------------------------------------------------------------------------------------------------
# the kernel
# ------------------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _geom(mean):
    """Geometric count >= 1 with the given mean."""
    if mean <= 1.0:
        return 1
    p = 1.0 / mean
    return 1 + int(np.log(1.0 - np.random.random()) / np.log(1.0 - p))


@numba.njit(cache=True, nogil=True)
def _arrival_weight(t_ms, night_w, weekend_w):
    """Relative session-arrival intensity at t (UTC ms): evening peak, night trough, weekends."""
    # US users: local time about UTC-6
    hour = ((t_ms // MS_PER_HOUR) - 6) % 24
    day = ((t_ms - 6 * MS_PER_HOUR) // MS_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday -> 0=Mon
    # cosine with the trough at 4am and the peak at 4pm
    w = night_w + (1.0 - night_w) * 0.5 * (1.0 - np.cos(2.0 * np.pi * (hour - 4.0) / 24.0))
    if day >= 5:
        w *= weekend_w
    return w


@numba.njit(cache=True, nogil=True)
def _page_weights(w, p, level, sat, vis, tup_m, tdn_m, soc_m, help_m, ad_m, err_m):
    """Fill w[1..N_EXTRA] with cumulative visit rates per song; return their total."""
    adv = p[P_AD_FREE] if level == 0 else p[P_AD_PAID]
    w[0] = 0.0
    w[PG_TUP] = p[P_TUP] * tup_m * np.exp(0.1 * sat)
    w[PG_TDOWN] = p[P_TDOWN] * tdn_m * np.exp(-p[P_SAT_TD_K] * sat) * (p[P_LEAVE_TD] if vis else 1.0)
    w[PG_PLAYLIST] = p[P_PLAYLIST] * tup_m
    w[PG_FRIEND] = p[P_FRIEND] * soc_m
    w[PG_HOME] = p[P_HOME]
    w[PG_SETTINGS] = p[P_SETTINGS]
    w[PG_HELP] = p[P_HELP] * help_m * np.exp(-p[P_SAT_HELP_K] * sat) * (p[P_LEAVE_HELP] if vis else 1.0)
    w[PG_ABOUT] = p[P_ABOUT]
    w[PG_ERROR] = p[P_ERROR] * err_m
    w[PG_ADVERT] = adv * ad_m
    # paid users rarely open the Upgrade page; free users cannot downgrade
    w[PG_UPGRADE] = p[P_UPG_PAGE] if level == 0 else 0.15 * p[P_UPG_PAGE]
    w[PG_DOWNGRADE] = (p[P_DG_PAGE] * np.exp(-p[P_SAT_DG_K] * sat)
                       * (p[P_LEAVE_DG] if vis else 1.0)) if level == 1 else 0.0
    w[PG_LOGOUT] = p[P_LOGOUT_MID]
    tot = 0.0
    for j in range(1, N_EXTRA + 1):
        tot += w[j]
        w[j] = tot
    return tot


@numba.njit(cache=True, nogil=True)
def _kernel(user_seeds, p, start_ms, end_ms, session_id0, song_cdf, song_len, n_first_f,
            n_first_m, n_last, loc_cdf, ua_cdf, cap,
            o_ts, o_user, o_sess, o_page, o_auth, o_level, o_item, o_song, o_len,
            u_reg, u_gender, u_first, u_last, u_loc, u_ua):
    """Simulate users in order; write rows to the o_* arrays and user attributes to u_*.

    Returns (rows written, next session id, users completed). Stops early (users completed <
    len(user_seeds)) when the row capacity would be exceeded, so the caller can grow and retry.
    """
    n_users = user_seeds.shape[0]
    n = 0
    sid = session_id0
    n_songs = song_cdf.shape[0]
    w = np.empty(N_EXTRA + 1)
    # mean of the arrival weight over a week (proposal rates are divided by it)
    w_mean = (p[P_NIGHT] + (1.0 - p[P_NIGHT]) * 0.5) * (5.0 + 2.0 * p[P_WEEKEND]) / 7.0
    for u in range(n_users):
        np.random.seed(user_seeds[u])
        # rows one user can need: checked per session below; keep a margin for one session
        n_user_start = n
        sid_user_start = sid
        # --- traits --------------------------------------------------------------------------
        z_act = np.random.standard_normal()
        z_len = p[P_ACT_LEN_CORR] * z_act + np.sqrt(1.0 - p[P_ACT_LEN_CORR] ** 2) * np.random.standard_normal()
        rate = p[P_RATE_MED] * np.exp(p[P_RATE_SIG] * z_act)
        song_mean = p[P_LEN_MED] * np.exp(p[P_LEN_SIG] * z_len)
        tup_m = np.exp(p[P_THUMBS_SIG] * np.random.standard_normal())
        tdn_m = np.exp(p[P_THUMBS_SIG] * np.random.standard_normal())
        soc_m = np.exp(p[P_SOCIAL_SIG] * np.random.standard_normal())
        help_m = np.exp(p[P_HELP_SIG] * np.random.standard_normal())
        ad_m = np.exp(p[P_AD_SIG] * np.random.standard_normal())
        err_m = np.exp(p[P_ERR_SIG] * np.random.standard_normal() - 0.5 * p[P_ERR_SIG] ** 2)
        ad_tol = np.random.beta(p[P_ADTOL_A], p[P_ADTOL_B])
        breadth = np.random.beta(p[P_BREADTH_A], p[P_BREADTH_B])
        taste_k = 1.0 + 2.0 * np.random.random()  # spread of song picks within the popular head
        haz_m = np.exp(p[P_HAZ_SIG] * np.random.standard_normal() - 0.5 * p[P_HAZ_SIG] ** 2)
        sat = p[P_SAT0] * np.random.standard_normal()
        level = 1 if np.random.random() < p[P_PAID0] else 0
        new_user = np.random.random() < p[P_NEW]
        # --- demographics --------------------------------------------------------------------
        g = 1 if np.random.random() < 0.5 else 0  # 1 = F
        u_gender[u] = g
        u_first[u] = np.random.randint(0, n_first_f) if g == 1 else n_first_f + np.random.randint(0, n_first_m)
        u_last[u] = np.random.randint(0, n_last)
        u_loc[u] = np.searchsorted(loc_cdf, np.random.random(), side="right")
        u_ua[u] = np.searchsorted(ua_cdf, np.random.random(), side="right")
        span = end_ms - start_ms
        # --- first session time, registration -------------------------------------------------
        if new_user:
            t = start_ms + int(np.random.random() * 0.9 * span)
            reg = t
        else:
            gap = -np.log(1.0 - np.random.random()) / (rate * (1.0 if level == 1 else p[P_FREE_RATE]))
            t = start_ms + int(min(gap, 0.97 * span / MS_PER_DAY) * MS_PER_DAY)
            # registered 1 day to ~10 months before the window
            reg = start_ms - int((1.0 + 300.0 * np.random.random() ** 1.5) * MS_PER_DAY) \
                - np.random.randint(0, MS_PER_DAY)
        u_reg[u] = reg
        leaving = False
        cancel_at = end_ms
        forced = False  # the next session is the cancellation visit (no thinning)
        leaving_visible = True
        churned = False
        first = True
        last_t = t
        while t < end_ms and not churned:
            if not first and not forced:
                # thinning: accept the candidate start with the arrival weight (candidates come
                # at rate / w_mean, so the accepted rate averages `rate`)
                if np.random.random() > _arrival_weight(t, p[P_NIGHT], p[P_WEEKEND]):
                    r = rate * (1.0 if level == 1 else p[P_FREE_RATE]) * np.exp(p[P_SAT_RATE_K] * sat)
                    if leaving and leaving_visible:
                        r *= p[P_LEAVE_RATE]
                    t += int(-np.log(1.0 - np.random.random()) / (r / w_mean) * MS_PER_DAY) + 1
                    continue
            # --- churn decision at the start of a session (hazard over the gap) ---------------
            if not leaving:
                gap_days = (t - last_t) / MS_PER_DAY if not first else 1.0
                h = p[P_HAZ_BASE] * haz_m * np.exp(-p[P_HAZ_SAT_K] * sat) + p[P_HAZ_SILENT]
                if np.random.random() < 1.0 - np.exp(-h * gap_days):
                    leaving = True
                    cancel_at = t + int(np.random.gamma(p[P_LEAVE_SHAPE], p[P_LEAVE_DAYS] / p[P_LEAVE_SHAPE]) * MS_PER_DAY)
                    leaving_visible = np.random.random() >= p[P_LEAVE_SILENT]
            last_session = leaving and t >= cancel_at - MS_PER_DAY // 2
            # capacity: a session rarely exceeds 40x its mean length; restart user if short
            if n + 4000 + int(40.0 * song_mean) >= cap:
                return n_user_start, sid_user_start, u
            # --- session ----------------------------------------------------------------------
            item = 0
            vis = leaving and leaving_visible
            lvl_len = 1.0 if level == 1 else p[P_FREE_LEN]
            mean_songs = song_mean * lvl_len * np.exp(p[P_SAT_LEN_K] * sat)
            if vis:
                mean_songs *= p[P_LEAVE_LEN]
            n_target = _geom(mean_songs)
            if first and new_user:
                for pg in (PG_HOME, PG_REGISTER, PG_SUB_REG):
                    o_ts[n] = t; o_user[n] = -1; o_sess[n] = sid; o_page[n] = pg
                    o_auth[n] = AU_GUEST; o_level[n] = level; o_item[n] = item
                    o_song[n] = -1; o_len[n] = np.nan
                    n += 1; item += 1
                    t += int(np.random.exponential(20.0) * 1000)
            elif np.random.random() < p[P_LO_PREFIX]:
                # logged-out prefix: Home, sometimes About/Help, then Login
                pre = PG_HOME
                while True:
                    o_ts[n] = t; o_user[n] = -1; o_sess[n] = sid; o_page[n] = pre
                    o_auth[n] = AU_OUT; o_level[n] = level; o_item[n] = item
                    o_song[n] = -1; o_len[n] = np.nan
                    n += 1; item += 1
                    t += int(np.random.exponential(p[P_GAP]) * 1000)
                    if pre == PG_LOGIN:
                        break
                    r0 = np.random.random()
                    # mini log, per session: logged-out Home 1.4, About 0.14, Help 0.09
                    if r0 < 0.10:
                        pre = PG_ABOUT
                    elif r0 < 0.16:
                        pre = PG_HELP
                    elif r0 < 0.45:
                        pre = PG_HOME
                    else:
                        pre = PG_LOGIN
            # per-session page weights between songs (recomputed when the level changes)
            tot = _page_weights(w, p, level, sat, vis, tup_m, tdn_m, soc_m, help_m, ad_m, err_m)
            p_more = tot / (1.0 + tot)  # geometric number of extras per song with mean `tot`
            songs = 0
            bad = 0.0
            sess_start = t
            if np.random.random() < p[P_SESSION_HOME]:
                o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_HOME
                o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                o_song[n] = -1; o_len[n] = np.nan
                n += 1; item += 1
                t += int(np.random.exponential(p[P_GAP]) * 1000)
            while songs < n_target and t < end_ms:
                # a song
                if np.random.random() < breadth:
                    s_idx = np.random.randint(0, n_songs)
                    offtaste = True
                else:
                    s_idx = np.searchsorted(song_cdf, np.random.random() ** taste_k, side="right")
                    if s_idx >= n_songs:
                        s_idx = n_songs - 1
                    offtaste = False
                ln = song_len[s_idx]
                o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_SONG
                o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                o_song[n] = s_idx; o_len[n] = ln
                n += 1; item += 1; songs += 1
                if np.random.random() < p[P_SKIP] * np.exp(-0.3 * sat):
                    t += int(ln * (0.1 + 0.6 * np.random.random()) * 1000)
                    bad += 0.5
                else:
                    t += int(ln * 1000)
                # pages between this song and the next
                while np.random.random() < p_more and n < cap - 8:
                    r1 = np.random.random() * tot
                    pg = 1
                    while w[pg] < r1:
                        pg += 1
                    o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = pg
                    o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                    o_song[n] = -1; o_len[n] = np.nan
                    n += 1; item += 1
                    t += int(np.random.exponential(p[P_GAP]) * 1000)
                    if pg == PG_TDOWN:
                        bad += 1.0
                    elif pg == PG_ADVERT:
                        bad += p[P_SAT_AD_W] * (1.0 - ad_tol)
                    elif pg == PG_ERROR:
                        bad += p[P_SAT_ERR_W]
                    elif pg == PG_SETTINGS and np.random.random() < p[P_SAVE]:
                        o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_SAVE
                        o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                        o_song[n] = -1; o_len[n] = np.nan
                        n += 1; item += 1
                        t += int(np.random.exponential(p[P_GAP]) * 1000)
                    elif pg == PG_UPGRADE and level == 0 and not vis:
                        if np.random.random() < p[P_SUB_UP] * np.exp(0.3 * sat):
                            o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_SUB_UP
                            o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                            o_song[n] = -1; o_len[n] = np.nan
                            n += 1; item += 1
                            t += int(np.random.exponential(p[P_GAP]) * 1000)
                            level = 1  # the submit row is the last free one
                            tot = _page_weights(w, p, level, sat, vis, tup_m, tdn_m, soc_m, help_m, ad_m, err_m)
                            p_more = tot / (1.0 + tot)
                            break
                    elif pg == PG_DOWNGRADE and level == 1:
                        if np.random.random() < p[P_SUB_DOWN] * np.exp(-0.5 * sat) * (2.0 if vis else 1.0):
                            o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_SUB_DOWN
                            o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                            o_song[n] = -1; o_len[n] = np.nan
                            n += 1; item += 1
                            t += int(np.random.exponential(p[P_GAP]) * 1000)
                            level = 0
                            tot = _page_weights(w, p, level, sat, vis, tup_m, tdn_m, soc_m, help_m, ad_m, err_m)
                            p_more = tot / (1.0 + tot)
                            break
                    elif pg == PG_LOGOUT:
                        # logged out mid-session: Home and Login rows without a userId follow
                        for pg2 in (PG_HOME, PG_LOGIN):
                            o_ts[n] = t; o_user[n] = -1; o_sess[n] = sid; o_page[n] = pg2
                            o_auth[n] = AU_OUT; o_level[n] = level; o_item[n] = item
                            o_song[n] = -1; o_len[n] = np.nan
                            n += 1; item += 1
                            t += int(np.random.exponential(p[P_GAP]) * 1000)
                        break
                # off-taste songs: an extra chance of a thumbs down
                if offtaste and np.random.random() < p[P_TDOWN] * (p[P_OFFTASTE_TD] - 1.0) * tdn_m:
                    o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_TDOWN
                    o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                    o_song[n] = -1; o_len[n] = np.nan
                    n += 1; item += 1
                    t += int(np.random.exponential(p[P_GAP]) * 1000)
                    bad += 1.0
            if last_session and t < end_ms:
                if vis and level == 1 and np.random.random() < 0.5:
                    o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_DOWNGRADE
                    o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                    o_song[n] = -1; o_len[n] = np.nan
                    n += 1; item += 1
                    t += int(np.random.exponential(10.0) * 1000)
                o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_CANCEL
                o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                o_song[n] = -1; o_len[n] = np.nan
                n += 1; item += 1
                # the confirmation follows at once (kept inside the window with its Cancel)
                t = min(t + int(np.random.exponential(p[P_GAP]) * 1000), end_ms - 1)
                o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_CONFIRM
                o_auth[n] = AU_CANCELLED; o_level[n] = level; o_item[n] = item
                o_song[n] = -1; o_len[n] = np.nan
                n += 1; item += 1
                churned = True
            elif t < end_ms and np.random.random() < p[P_LOGOUT_END]:
                o_ts[n] = t; o_user[n] = u; o_sess[n] = sid; o_page[n] = PG_LOGOUT
                o_auth[n] = AU_IN; o_level[n] = level; o_item[n] = item
                o_song[n] = -1; o_len[n] = np.nan
                n += 1; item += 1
            sid += 1
            first = False
            # --- satisfaction update (AR(1) driven by this session's bad experiences) ----------
            bad_rate = bad / (songs + 5.0)
            sat = p[P_SAT_RHO] * sat + (1.0 - p[P_SAT_RHO]) * p[P_SAT_BAD_W] * (p[P_SAT_BAD_REF] - bad_rate) \
                + p[P_SAT_NOISE] * np.random.standard_normal()
            sat = min(3.0, max(-3.0, sat))
            # --- next session: gap after this one ends ----------------------------------------
            last_t = t
            r = rate * (1.0 if level == 1 else p[P_FREE_RATE]) * np.exp(p[P_SAT_RATE_K] * sat)
            if leaving and leaving_visible:
                r *= p[P_LEAVE_RATE]
            t += int(-np.log(1.0 - np.random.random()) / (r / w_mean) * MS_PER_DAY) + 60_000
            forced = False
            if leaving and t >= cancel_at:
                t = max(cancel_at, last_t + 60_000)
                forced = True
    return n, sid, n_users


# ------------------------------------------------------------------------------------------------
# chunk -> arrow table
# ------------------------------------------------------------------------------------------------
class _Static:
    """Per-run constants: catalogue, name and location lists as arrow dictionaries."""

    def __init__(self, cfg: SimulatorConfig, seed: int):
        titles, artists, song_artist, lengths, cdf = _catalogue(cfg, seed)
        self.song_cdf = cdf
        self.song_len = lengths.astype(np.float64)
        self.song_artist = song_artist
        self.song_dict = pa.array(titles, pa.string())
        self.artist_dict = pa.array(artists, pa.string())
        # every dictionary must hold distinct values (see _unique)
        for names in (_FIRST_F + _FIRST_M, _LAST, [n for n, _ in _LOCATIONS],
                      [a for a, _ in _USER_AGENTS]):
            assert len(set(names)) == len(names)
        self.first_dict = pa.array(list(_FIRST_F) + list(_FIRST_M), pa.string())
        self.n_first_f, self.n_first_m = len(_FIRST_F), len(_FIRST_M)
        self.last_dict = pa.array(list(_LAST), pa.string())
        lw = np.array([w for _, w in _LOCATIONS])
        self.loc_cdf = np.cumsum(lw / lw.sum())
        self.loc_cdf[-1] = 1.0 + 1e-12
        self.loc_dict = pa.array([name for name, _ in _LOCATIONS], pa.string())
        uw = np.array([w for _, w in _USER_AGENTS])
        self.ua_cdf = np.cumsum(uw / uw.sum())
        self.ua_cdf[-1] = 1.0 + 1e-12
        self.ua_dict = pa.array([ua for ua, _ in _USER_AGENTS], pa.string())
        self.page_dict = pa.array(list(PAGES), pa.string())
        self.auth_dict = pa.array(list(AUTHS), pa.string())
        self.level_dict = pa.array(list(LEVELS), pa.string())
        self.gender_dict = pa.array(["M", "F"], pa.string())
        self.method_dict = pa.array(["PUT", "GET"], pa.string())
        self.page_method = np.array([0 if PAGE_METHOD_STATUS[pg][0] == "PUT" else 1 for pg in PAGES],
                                    dtype=np.int8)
        self.page_status = np.array([PAGE_METHOD_STATUS[pg][1] for pg in PAGES], dtype=np.int64)


_STRING_COLS = ("userId", "page", "auth", "method", "level", "location", "userAgent", "firstName",
                "lastName", "gender", "artist", "song")


def _schema(dictionary: bool) -> pa.Schema:
    s = pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.string()
    types = {"ts": pa.int64(), "sessionId": pa.int64(), "status": pa.int64(),
             "itemInSession": pa.int64(), "registration": pa.float64(), "length": pa.float64()}
    return pa.schema([(c, types.get(c, s)) for c in EVENT_COLUMNS])


def _dict(indices: np.ndarray, dictionary: pa.Array, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    idx = pa.array(indices.astype(np.int32, copy=False), pa.int32(),
                   mask=mask if mask is not None and mask.any() else None)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _simulate_chunk(st: _Static, params: np.ndarray, user_seeds: np.ndarray, user_id0: int,
                    start_ms: int, end_ms: int, session_id0: int, days: float) -> tuple[pa.Table, int]:
    """Simulate one chunk of users; return its table (dictionary-encoded strings) and next sessionId."""
    n_users = len(user_seeds)
    cap = int(n_users * max(days, 1.0) * 40) + 50_000
    while True:
        o_ts = np.empty(cap, np.int64); o_user = np.empty(cap, np.int32)
        o_sess = np.empty(cap, np.int64); o_page = np.empty(cap, np.int8)
        o_auth = np.empty(cap, np.int8); o_level = np.empty(cap, np.int8)
        o_item = np.empty(cap, np.int32); o_song = np.empty(cap, np.int32)
        o_len = np.empty(cap, np.float64)
        u_reg = np.empty(n_users, np.int64); u_gender = np.empty(n_users, np.int8)
        u_first = np.empty(n_users, np.int32); u_last = np.empty(n_users, np.int32)
        u_loc = np.empty(n_users, np.int32); u_ua = np.empty(n_users, np.int32)
        n, sid, done = _kernel(user_seeds, params, start_ms, end_ms, session_id0, st.song_cdf,
                               st.song_len, st.n_first_f, st.n_first_m, len(st.last_dict),
                               st.loc_cdf, st.ua_cdf, cap, o_ts, o_user, o_sess, o_page, o_auth,
                               o_level, o_item, o_song, o_len, u_reg, u_gender, u_first, u_last,
                               u_loc, u_ua)
        if done == n_users:
            break
        cap *= 2  # rare: a very heavy chunk; rerun (deterministic: per-user seeds)
    # the log ends at end_ms: drop the tails of sessions still running then (a session's rows
    # stay 0..k-1 without gaps, and Cancel/Confirmation are never separated, see the kernel)
    keep = o_ts[:n] < end_ms
    if keep.all():
        sl = slice(0, n)
    else:
        sl = np.flatnonzero(keep)
        n = len(sl)
    user = o_user[sl]
    anon = user < 0
    uix = np.where(anon, 0, user)
    page = o_page[sl]
    song = o_song[sl]
    nosong = song < 0
    sidx = np.where(nosong, 0, song)
    ids = pa.array([""] + [str(user_id0 + i + 1) for i in range(n_users)], pa.string())
    reg = u_reg[uix].astype(np.float64)
    reg[anon] = np.nan
    cols = {
        "ts": pa.array(o_ts[sl]),
        "userId": _dict(np.where(anon, 0, user + 1), ids),
        "sessionId": pa.array(o_sess[sl]),
        "page": _dict(page, st.page_dict),
        "auth": _dict(o_auth[sl], st.auth_dict),
        "method": _dict(st.page_method[page], st.method_dict),
        "status": pa.array(st.page_status[page]),
        "level": _dict(o_level[sl], st.level_dict),
        "itemInSession": pa.array(o_item[sl].astype(np.int64)),
        "location": _dict(u_loc[uix], st.loc_dict, anon),
        "userAgent": _dict(u_ua[uix], st.ua_dict, anon),
        "firstName": _dict(u_first[uix], st.first_dict, anon),
        "lastName": _dict(u_last[uix], st.last_dict, anon),
        "registration": pa.array(reg, pa.float64(), from_pandas=True),
        "gender": _dict(u_gender[uix], st.gender_dict, anon),
        "artist": _dict(st.song_artist[sidx], st.artist_dict, nosong),
        "song": _dict(sidx, st.song_dict, nosong),
        "length": pa.array(o_len[sl], pa.float64(), from_pandas=True),
    }
    return pa.table(cols, schema=_schema(True)), int(sid)


def _run(n_users: int, days: float, seed: int, start: str, config: SimulatorConfig | None,
         chunk_users: int, *, catalogue_seed: int | None = None, id_offset: int = 0, n_jobs: int = 1):
    """Yield one arrow table per chunk of users, in user order."""
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    if chunk_users < 1:
        raise ValueError(f"chunk_users must be >= 1, got {chunk_users}")
    if id_offset < 0:
        raise ValueError(f"id_offset must be >= 0, got {id_offset}")
    cfg = config or SimulatorConfig()
    st = _Static(cfg, seed if catalogue_seed is None else catalogue_seed)
    params = cfg._params()
    ts0 = pd.Timestamp(start)
    ts0 = ts0.tz_localize("UTC") if ts0.tzinfo is None else ts0.tz_convert("UTC")
    start_ms = int(ts0.value // 1_000_000)
    end_ms = start_ms + int(round(days * MS_PER_DAY))
    # one independent 32-bit seed per user: the output does not depend on the chunking
    user_seeds = np.random.SeedSequence(seed).generate_state(n_users, np.uint32)
    bounds = [(lo, min(n_users, lo + chunk_users)) for lo in range(0, n_users, chunk_users)]
    if n_jobs <= 1 or len(bounds) == 1:
        sid = 1
        for lo, hi in bounds:
            table, sid = _simulate_chunk(st, params, user_seeds[lo:hi], id_offset + lo, start_ms, end_ms, sid, days)
            yield table
        return

    # Parallel: every chunk numbers its sessions from 1 (the kernel releases the GIL); the ids are
    # then shifted by the sessions of the chunks before it, which is exactly the serial numbering.
    def one(b: tuple[int, int]) -> tuple[pa.Table, int]:
        lo, hi = b
        return _simulate_chunk(st, params, user_seeds[lo:hi], id_offset + lo, start_ms, end_ms, 1, days)

    shift = 0
    col = _schema(True).get_field_index("sessionId")
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for i in range(0, len(bounds), n_jobs):  # n_jobs chunks at a time: memory stays bounded
            for table, sid in pool.map(one, bounds[i:i + n_jobs]):
                if shift:
                    table = table.set_column(col, "sessionId", pc.add(table.column(col), pa.scalar(shift, pa.int64())))
                shift += sid - 1
                yield table


def _decode(table: pa.Table) -> pa.Table:
    """Dictionary columns -> plain strings (for pandas users and NDJSON)."""
    return pa.table([c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c
                     for c in table.columns], schema=_schema(False))


def event_chunks(n_users: int = 2000, days: float = 60, seed: int = 7, *, start: str = "2018-10-01",
                 config: SimulatorConfig | None = None, chunk_users: int = 2000, catalogue_seed: int | None = None,
                 id_offset: int = 0, n_jobs: int = 1) -> Iterator[pa.Table]:
    """The simulated log as Arrow tables, one per chunk of ``chunk_users`` users, in user order.

    What :func:`write_event_log` writes (one parquet row group per chunk): strings are
    dictionary-encoded, so a chunk is small; concatenated, the chunks are the whole log (``sessionId``
    runs on across chunks). For work that can go user by user (e.g. per-user features of a log too
    large to hold), without writing the whole log first.

    Parameters
    ----------
    n_users, days, seed, start, config, catalogue_seed, id_offset, n_jobs
        As in :func:`simulate_events`.
    chunk_users : int, default 2000
        Users per chunk.

    Yields
    ------
    pyarrow.Table
        Columns :data:`churnlib.schema.EVENT_COLUMNS` (string columns dictionary-encoded).
    """
    yield from _run(n_users, days, seed, start, config, chunk_users, catalogue_seed=catalogue_seed,
                    id_offset=id_offset, n_jobs=n_jobs)


def simulate_events(n_users: int = 2000, days: float = 60, seed: int = 7, *,
                    start: str = "2018-10-01", config: SimulatorConfig | None = None,
                    catalogue_seed: int | None = None, id_offset: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Simulate a Sparkify-schema event log in memory.

    Parameters
    ----------
    n_users : int
        Number of users (each has at least one session in the window).
    days : float
        Length of the window in days.
    seed : int
        Seed; the same seed gives the same events.
    start : str
        Start of the window (UTC), e.g. ``"2018-10-01"``.
    config : SimulatorConfig, optional
        Model parameters; defaults to the calibrated :class:`SimulatorConfig`.
    catalogue_seed : int, optional
        Seed of the song catalogue (default: ``seed``). Two seeds are two services with catalogues
        of their own; a *new window of the same service* keeps the reference log's catalogue: pass
        that log's seed here and a fresh ``seed`` for the users. ``catalogue_seed=seed`` is the
        default output.
    id_offset : int, default 0
        User ids are ``id_offset + 1 ... id_offset + n_users`` (keeps a new window's ids apart from
        the reference's).
    n_jobs : int, default 1
        Threads simulating chunks of users in parallel; the events do not depend on it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`churnlib.schema.EVENT_COLUMNS`, ordered by user then time. ``userId`` is a
        string (empty for logged-out and guest rows), ``ts`` int64 epoch ms, ``registration`` float
        epoch ms (NaN on rows without a user), as in the public Sparkify logs.
    """
    tables = [_decode(t) for t in _run(n_users, days, seed, start, config, chunk_users=5000,
                                       catalogue_seed=catalogue_seed, id_offset=id_offset, n_jobs=n_jobs)]
    df = pa.concat_tables(tables).to_pandas()
    return df


def write_event_log(out: str | os.PathLike, n_users: int = 2000, days: float = 60, seed: int = 7, *,
                    start: str = "2018-10-01", config: SimulatorConfig | None = None,
                    chunk_users: int = 2000, catalogue_seed: int | None = None, id_offset: int = 0,
                    n_jobs: int = 1) -> dict:
    """Simulate an event log and write it to ``out`` (parquet, or NDJSON by extension).

    Users are generated ``chunk_users`` at a time and each chunk is written as one parquet row
    group (or appended as NDJSON lines), so memory stays bounded at any scale. The file is written
    to a temporary file in the same folder and renamed into place, so readers never see a partial
    log.

    Parameters
    ----------
    out : str or path-like
        ``*.parquet`` / ``*.pq``, or ``*.json``, ``*.jsonl``, ``*.ndjson`` (optionally ``.gz``).
    n_users, days, seed, start, config, catalogue_seed, id_offset
        As in :func:`simulate_events` (``catalogue_seed``: a new window over the catalogue of the
        log simulated with that seed).
    chunk_users : int
        Users per chunk. The written events do not depend on it.
    n_jobs : int, default 1
        Threads simulating chunks in parallel (each holds one chunk in memory); the written file
        does not depend on it.

    Returns
    -------
    dict
        ``path``, ``events``, ``users``, ``sessions``, ``churned`` (users with a cancellation),
        ``bytes``, ``seconds`` and ``events_per_s``.
    """
    out = Path(out)
    name = out.name.lower()
    gz = name.endswith(".gz")
    base = name[:-3] if gz else name
    if base.endswith((".parquet", ".pq")) and not gz:
        fmt = "parquet"
    elif base.endswith((".json", ".jsonl", ".ndjson")):
        fmt = "ndjson"
    else:
        raise ValueError(f"write_event_log: unknown output type {out.name!r}; use .parquet or "
                         f".json[l].gz / .ndjson[.gz]")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    events = sessions = churned = 0
    confirm = PAGES.index("Cancellation Confirmation")
    more = {"catalogue_seed": catalogue_seed, "id_offset": id_offset, "n_jobs": n_jobs}

    def write(tmp: str) -> None:
        nonlocal events, sessions, churned
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, _schema(True), compression="snappy", store_schema=False,
                                  dictionary_pagesize_limit=4 << 20) as writer:
                for table in _run(n_users, days, seed, start, config, chunk_users, **more):
                    writer.write_table(table, row_group_size=max(table.num_rows, 1))
                    events += table.num_rows
                    sessions += _count_sessions(table)
                    churned += _count_page(table, confirm)
        else:
            import gzip
            opener = gzip.open if gz else open
            with opener(tmp, "wb") as fh:
                for table in _run(n_users, days, seed, start, config, chunk_users, **more):
                    events += table.num_rows
                    sessions += _count_sessions(table)
                    churned += _count_page(table, confirm)
                    df = _decode(table).to_pandas()
                    fh.write(df.to_json(orient="records", lines=True).encode("utf-8"))

    atomic_write(out, write)
    secs = time.perf_counter() - t0
    return {"path": str(out), "format": fmt, "events": events, "users": n_users,
            "sessions": sessions, "churned": churned, "bytes": out.stat().st_size,
            "seconds": secs, "events_per_s": events / secs if secs > 0 else float("inf")}


#: Users simulated to estimate events per user when :func:`write_partitioned_log` is given ``n_events``.
PILOT_USERS = 2000
_PART = "part-{:05d}.parquet"


def write_partitioned_log(out_dir: str | os.PathLike, n_users: int | None = None, days: float = 60, seed: int = 7, *,
                          n_events: float | None = None, start: str = "2018-10-01",
                          config: SimulatorConfig | None = None, chunk_users: int = 2000,
                          catalogue_seed: int | None = None, id_offset: int = 0, n_jobs: int = 1,
                          overwrite: bool = False) -> dict:
    """Simulate a large event log and write it as a folder of parquet files, in bounded memory.

    One file per chunk of ``chunk_users`` users (``part-00000.parquet``, ``part-00001.parquet``, ...
    in user order; each user's events are in one file), written as the chunk is simulated, so memory
    holds at most ``n_jobs`` chunks whatever the size of the log (about 0.4 GB per 2,000 users x 60
    days). Read in file order, the folder holds exactly the events :func:`write_event_log` writes for
    the same arguments (same rows, order, ``sessionId`` and values; the same parquet schema, strings
    dictionary-encoded). DuckDB (:func:`churnlib.load.load_events`,
    :func:`churnlib.features.build_features`) and Spark (``spark.read.parquet``) read the folder as one
    log. The folder is written under a temporary name beside ``out_dir`` and renamed into place when
    complete, so a reader never sees a partial log.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to create. It must not exist, unless ``overwrite`` (then it may only hold a previous
        log's ``part-*.parquet`` files).
    n_users : int, optional
        Number of users. Give this or ``n_events``.
    days, seed, start, config, catalogue_seed, id_offset
        As in :func:`simulate_events`.
    n_events : float, optional
        About how many events to write instead of ``n_users`` (e.g. ``1e8``): the number of users is
        ``n_events`` over the events per user of a pilot run of the first :data:`PILOT_USERS` users
        (same seed, days and configuration), so the log is within about 2% of the target (one standard
        deviation at the defaults) and the same for the same arguments.
    chunk_users : int, default 2000
        Users per file (and per chunk held in memory).
    n_jobs : int, default 1
        Threads simulating chunks in parallel (each holds one chunk); the files do not depend on it.
    overwrite : bool, default False
        Replace an existing log folder.

    Returns
    -------
    dict
        ``path``, ``format`` (``"parquet-folder"``), ``files``, ``events``, ``users``, ``sessions``,
        ``churned``, ``bytes`` (all files), ``seconds``, ``events_per_s``, and ``target_events``
        (``n_events``, or None).

    Raises
    ------
    ValueError
        Neither or both of ``n_users`` and ``n_events``, or a bad size.
    FileExistsError
        ``out_dir`` exists (without ``overwrite``, or holding other files).
    """
    if (n_users is None) == (n_events is None):
        raise ValueError("write_partitioned_log: give exactly one of n_users and n_events")
    t0 = time.perf_counter()
    if n_events is not None:
        if not np.isfinite(n_events) or n_events < 1:
            raise ValueError(f"n_events must be a number >= 1, got {n_events!r}")
        n_users = _users_for_events(float(n_events), days, seed, start, config,
                                    catalogue_seed=catalogue_seed, id_offset=id_offset)
    out = Path(out_dir)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{out} already exists (pass overwrite=True to replace a previous log)")
        if not out.is_dir() or any(not (f.is_file() and re.fullmatch(r"part-\d{5}\.parquet", f.name))
                                   for f in out.iterdir()):
            raise FileExistsError(f"{out} is not a folder written by write_partitioned_log; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    events = sessions = churned = files = size = 0
    confirm = PAGES.index("Cancellation Confirmation")
    try:
        mode = new_file_mode()
        os.chmod(tmp, mode | (mode & 0o444) >> 2)  # a folder as mkdir makes it (0755 under umask 022)
        chunks = _run(n_users, days, seed, start, config, chunk_users, catalogue_seed=catalogue_seed,
                      id_offset=id_offset, n_jobs=n_jobs)
        for i, table in enumerate(chunks):
            part = tmp / _PART.format(i)
            pq.write_table(table, part, row_group_size=max(table.num_rows, 1), compression="snappy",
                           store_schema=False, dictionary_pagesize_limit=4 << 20)
            events += table.num_rows
            sessions += _count_sessions(table)
            churned += _count_page(table, confirm)
            files += 1
            size += part.stat().st_size
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    secs = time.perf_counter() - t0
    return {"path": str(out), "format": "parquet-folder", "files": files, "events": events, "users": n_users,
            "sessions": sessions, "churned": churned, "bytes": size, "seconds": secs,
            "events_per_s": events / secs if secs > 0 else float("inf"),
            "target_events": None if n_events is None else int(n_events)}


def _users_for_events(n_events: float, days: float, seed: int, start: str, config: SimulatorConfig | None,
                      **more) -> int:
    """Users needed for about ``n_events`` events: the events per user of the first PILOT_USERS users."""
    pilot = events = 0
    for table in _run(PILOT_USERS, days, seed, start, config, PILOT_USERS, **more):
        events += table.num_rows
        pilot += PILOT_USERS
    return max(1, int(round(n_events * pilot / max(events, 1))))


def _count_sessions(table: pa.Table) -> int:
    s = table.column("sessionId").to_numpy()
    return int(np.unique(s).size)


def _count_page(table: pa.Table, code: int) -> int:
    return int((table.column("page").combine_chunks().indices.to_numpy() == code).sum())
