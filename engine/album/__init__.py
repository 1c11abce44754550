"""The weekly community album, music side: clip features and quality at ingest, choosing and
ordering the week's shared songs, joining them into one mastered mix, and its files (Ogg
Opus and MP3 with chapters, a cover).

Pure functions: samples and bytes in, small dataclasses and bytes out. The bot side decides
whose songs may go in (consent), stores features and votes, and makes a build idempotent;
everything here is deterministic (the same songs give the same album, byte for byte).

One module per job: _features (at ingest), _fingerprints (chromaprint, near-duplicates),
_choosing, _ordering, _joining (the mix), _export (files, chapters, tags), _cover.
"""

from engine.album._choosing import Candidate, choose, near_duplicate
from engine.album._cover import cover_png
from engine.album._export import ALBUM_FORMATS, Album, build_album, encode_album
from engine.album._features import TIMBRE_NAMES, ClipFeatures, Quality, features, fifths_position
from engine.album._fingerprints import duplicate_groups, fingerprint, similarity
from engine.album._joining import (
    AlbumMix,
    Chapter,
    Join,
    assemble,
    quietest_inside_dbfs,
    tempo_ratio,
)
from engine.album._ordering import (
    key_distance,
    neighbour_distances,
    order,
    random_order_distances,
    tempo_distance_pct,
)

__all__ = [
    "ALBUM_FORMATS", "TIMBRE_NAMES", "Album", "AlbumMix", "Candidate", "Chapter", "ClipFeatures",
    "Join", "Quality", "assemble", "build_album", "choose", "cover_png", "duplicate_groups",
    "encode_album", "features", "fifths_position", "fingerprint", "key_distance",
    "near_duplicate", "neighbour_distances", "order", "quietest_inside_dbfs",
    "random_order_distances", "similarity", "tempo_distance_pct", "tempo_ratio",
]
