"""Small landing files in the formats of public click logs, written by the project itself (made-up
ids and times in each data set's layout; no real data). One writer per built-in profile; each file
holds a few realistic rows plus the oddities that format is known for, so that a test can assert
exact counts: what is accepted, filtered (event type not kept), quarantined and deduplicated.
"""

from __future__ import annotations

import json
from pathlib import Path


def _write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


# RetailRocket events.csv: timestamp(ms),visitorid,event,itemid,transactionid.
# 1433221332117 ms = 2015-06-02 05:02:12.117 UTC.
RETAILROCKET_LINES = [
    "timestamp,visitorid,event,itemid,transactionid",
    "1433221332117,257597,view,355908,",  # line 2
    "1433224214164,992329,view,248676,",  # line 3
    "1433221999827,111016,view,318965,",  # line 4
    "1433221955914,483717,addtocart,253185,",  # line 5 -> cart
    "1433222147345,951259,transaction,367447,10",  # line 6 -> buy
    "1433222147345,951259,transaction,367447,10",  # line 7: exact duplicate of line 6
    "1433223236124,257597,search,355908,",  # line 8: not a kept type -> filtered
    "1433223236124,257597,search,355908,",  # line 9: filtered too (not a duplicate)
    "1433224999000,,view,355908,",  # line 10: no visitor -> quarantined (user_id required)
]


def write_retailrocket(path: Path) -> Path:
    return _write(path, RETAILROCKET_LINES)


# DIGINETICA train-item-views.csv: sessionId;userId;itemId;timeframe;eventdate. Anonymous
# sessions carry userId NA; timeframe = ms since the session's start. Session 1 views the same item
# twice on the same date: only the offset tells the two views apart (no duplicates).
DIGINETICA_LINES = [
    "sessionId;userId;itemId;timeframe;eventdate",
    "1;NA;81766;526309;2016-05-09",  # 00:08:46.309, anonymous
    "1;NA;31331;1031018;2016-05-09",  # 00:17:11.018
    "1;NA;81766;1288967;2016-05-09",  # 00:21:28.967: same item and date as line 2
    "2;18278;9654;75848;2016-05-09",  # logged-in user 18278
    "2;18278;33043;86536;2016-05-09",
    "3;NA;100747;90112199;2016-05-10",  # 1 day 01:01:52.199 after the date: 2016-05-11
    "4;NA;12011;NA;2016-05-10",  # line 8: offset missing -> no timestamp -> quarantined
    "5;NA;77070;1500;not-a-date",  # line 9: unreadable date -> quarantined
]


def write_diginetica(path: Path) -> Path:
    return _write(path, DIGINETICA_LINES)


# MovieLens 1M ratings.dat: UserID::MovieID::Rating::Timestamp, no header. 978300760 s =
# 2000-12-31 22:12:40 UTC. Line 5 has the wrong number of fields (a single ':' separator).
MOVIELENS1M_LINES = [
    "1::1193::5::978300760",
    "1::661::3::978302109",
    "1::914::3::978301968",
    "2::1357::5::978298709",
    "2:3068:4:978299000",  # line 5: malformed (1 field) -> quarantined
    "6040::2019::4::956703932",  # 2000-04-25 23:05:32 UTC
]


def write_movielens1m(path: Path) -> Path:
    return _write(path, MOVIELENS1M_LINES)


# yoochoose-buys.dat: session,timestamp,item,price,quantity (no header; price/quantity 0 happen).
YOOCHOOSE_BUYS_LINES = [
    "420374,2014-04-06T18:44:58.314Z,214537888,12462,1",
    "420374,2014-04-06T18:44:58.325Z,214537850,10471,1",
    "281626,2014-04-06T09:40:13.032Z,214535653,1883,1",
    "420368,2014-04-04T06:13:28.848Z,214821275,0,0",
    "420368,2014-04-04T06:13:28.848Z,214821275,0,0",  # line 5: exact duplicate
]


def write_yoochoose_buys(path: Path) -> Path:
    return _write(path, YOOCHOOSE_BUYS_LINES)


# Taobao UserBehavior.csv: user,item,category,behavior,unix ts; no header. 1511544070 s =
# 2017-11-24 17:21:10 UTC.
TAOBAO_LINES = [
    "1,2268318,2520377,pv,1511544070",
    "1,2333346,2520771,pv,1511561733",
    "1,2576651,149192,fav,1511572885",
    "1,3830808,4181361,cart,1511593493",
    "100,4182583,1258177,buy,1511651380",
    "100,2337874,1194311,pv,1511711001",
    "100,2337874,1194311,share,1511711060",  # line 7: not a kept type -> filtered
    "101,NA,1194311,pv,1511711001",  # line 8: item 'NA' is an item id here (no null_values)
]


def write_taobao(path: Path) -> Path:
    return _write(path, TAOBAO_LINES)


# Amazon reviews (2018 JSON lines). "style" is a nested object (not on every review).
AMAZON_REVIEWS = [
    {"overall": 5.0, "verified": True, "reviewTime": "09 1, 2015", "reviewerID": "A2SUAM1J3GNN3B",
     "asin": "0000013714", "style": {"Format:": " Hardcover"}, "reviewerName": "J. McDonald",
     "reviewText": "Bought it for my husband.", "summary": "Five Stars", "unixReviewTime": 1441065600},
    {"overall": 3.0, "verified": False, "reviewTime": "12 18, 2014", "reviewerID": "A14VAT5EAX3D9S",
     "asin": "0000013714", "style": {"Format:": " Paperback"}, "reviewerName": "Jake",
     "reviewText": "It was fine.", "summary": "Three Stars", "unixReviewTime": 1418860800},
    {"overall": 4.0, "verified": True, "reviewTime": "12 18, 2014", "reviewerID": "A14VAT5EAX3D9S",
     "asin": "0005080789", "reviewerName": "Jake", "reviewText": "Good read.", "summary": "Four Stars",
     "unixReviewTime": 1418860800},
    {"verified": True, "reviewTime": "01 2, 2015", "reviewerID": "A1NSNCL4Z2MYYR", "asin": "0005080789",
     "reviewText": "(no rating given)", "unixReviewTime": 1420156800},
]


def write_amazon_reviews(path: Path) -> Path:
    lines = [json.dumps(r) for r in AMAZON_REVIEWS]
    lines.insert(2, '{"overall": 2.0, "reviewerID": "A3"')  # line 3: truncated JSON -> quarantined
    return _write(path, lines)
