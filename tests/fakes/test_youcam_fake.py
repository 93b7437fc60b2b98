"""Tests for the fake YouCam s2s v1.0 server: they pin our reading of providers.md §1 on the wire."""

from __future__ import annotations

import base64
import io
import secrets
import time
from typing import Any

import anyio
import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from PIL import Image

from .images import image_bytes
from .loopback import serve
from .youcam import FakeYouCam, catalog

V1 = "/s2s/v1.0"
HAIR_GROUP, HAIR_STYLE = catalog("hair-style")[0][0], catalog("hair-style")[0][2][1][0]


def _client(fake: FakeYouCam, base_url: str = "http://fake") -> httpx2.AsyncClient:
    if base_url == "http://fake":
        return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app), base_url=base_url)
    return httpx2.AsyncClient(base_url=base_url)


def _id_token(secret_b64: str, cid: str, ts_ms: int | None = None) -> str:
    # The recipe of providers.md §1.1, verbatim.
    pub = serialization.load_der_public_key(base64.b64decode(secret_b64))
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    msg = f"client_id={cid}&timestamp={ts}".encode()
    return base64.b64encode(pub.encrypt(msg, padding.PKCS1v15())).decode()


async def _login(c: httpx2.AsyncClient, fake: FakeYouCam) -> dict[str, str]:
    r = await c.post(
        f"{V1}/client/auth",
        json={"client_id": fake.client_id, "id_token": _id_token(fake.secret_key, fake.client_id)},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['result']['access_token']}"}


async def _upload(c: httpx2.AsyncClient, h: dict, feature: str, data: bytes, ct: str = "image/jpg") -> str:
    r = await c.post(f"{V1}/file/{feature}", headers=h, json={"files": [{"content_type": ct, "file_name": "a"}]})
    assert r.status_code == 200, r.text
    f = r.json()["result"]["files"][0]
    req = f["requests"][0]
    assert req["method"] == "PUT" and req["headers"] == {"Content-Type": ct}
    put = await c.put(req["url"], content=data, headers=req["headers"])
    assert put.status_code == 200 and put.content == b""
    return f["file_id"]


def _body(request_id: int = 0, params: dict | None = None, ext: str | None = None, **sets: str) -> dict:
    payload: dict[str, Any] = {"actions": [{"id": 0, **({"params": params} if params else {})}]}
    if sets:
        payload["file_sets"] = {k: [v] for k, v in sets.items()}
    if ext:
        payload["output_ext"] = ext
    return {"request_id": request_id, "payload": payload}


async def _run(c: httpx2.AsyncClient, h: dict, feature: str, body: dict) -> str:
    r = await c.post(f"{V1}/task/{feature}", headers=h, json=body)
    assert r.status_code == 200, r.text
    return r.json()["result"]["task_id"]


async def _poll(c: httpx2.AsyncClient, h: dict, feature: str, tid: str) -> dict:
    for _ in range(10):
        r = await c.get(f"{V1}/task/{feature}", headers=h, params={"task_id": tid})
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        if result["status"] != "running":
            return result
        assert result["polling_interval"] == 1000 and "results" not in result
    raise AssertionError("never finished")


async def _image(c: httpx2.AsyncClient, url: str) -> Image.Image:
    r = await c.get(url)
    assert r.status_code == 200
    img = Image.open(io.BytesIO(r.content))
    img.load()
    return img


async def test_auth_round_trip_with_the_public_key() -> None:
    fake = FakeYouCam()
    assert len(fake.client_id) == 32
    token = _id_token(fake.secret_key, fake.client_id)
    assert len(token) == 172  # as the seed's sample: a 1024-bit key
    async with _client(fake) as c:
        r = await c.post(f"{V1}/client/auth", json={"client_id": fake.client_id, "id_token": token})
        assert r.status_code == 200
        assert set(r.json()) == {"status", "result"} and r.json()["status"] == 200
        h = {"Authorization": f"Bearer {r.json()['result']['access_token']}"}
        assert (await c.get(f"{V1}/client/credit", headers=h)).status_code == 200
    assert "authorization" not in fake.requests[0].headers


async def test_auth_rejections() -> None:
    fake = FakeYouCam()
    cid, key = fake.client_id, fake.secret_key
    async with _client(fake) as c:

        async def auth(body: dict) -> httpx2.Response:
            return await c.post(f"{V1}/client/auth", json=body)

        garbage = base64.b64encode(b"x" * 128).decode()
        r = await auth({"client_id": cid, "id_token": garbage})
        assert r.status_code == 400 and r.json()["error_code"] == "InvalidParameters"
        plain = base64.b64encode(f"client_id={cid}&timestamp=1".encode()).decode()  # btoa, not RSA
        assert (await auth({"client_id": cid, "id_token": plain})).status_code == 400
        assert (await auth({"client_id": cid})).status_code == 400
        other = "B" * 32
        r = await auth({"client_id": cid, "id_token": _id_token(key, other)})
        assert r.status_code == 401
        assert r.json() == {"status": 401, "error": "Unauthorized", "error_code": "InvalidAccessToken"}
        assert (await auth({"client_id": other, "id_token": _id_token(key, other)})).status_code == 401
        stale = int(time.time() * 1000) - 10 * 60 * 1000
        assert (await auth({"client_id": cid, "id_token": _id_token(key, cid, stale)})).status_code == 401


async def test_tokens_expire_and_refresh() -> None:
    fake = FakeYouCam()
    async with _client(fake) as c:
        r = await c.get(f"{V1}/client/credit")
        assert r.status_code == 401 and r.json()["error_code"] == "InvalidAccessToken"
        assert (await c.get(f"{V1}/client/credit", headers={"Authorization": "Bearer nope"})).status_code == 401
        h = await _login(c, fake)
        assert (await c.get(f"{V1}/client/credit", headers=h)).status_code == 200
        fake.expire_tokens()
        assert (await c.get(f"{V1}/client/credit", headers=h)).status_code == 401
        h2 = await _login(c, fake)
        assert (await c.get(f"{V1}/client/credit", headers=h2)).status_code == 200
        fake.token_ttl_s = 0.0
        h3 = await _login(c, fake)
        assert (await c.get(f"{V1}/client/credit", headers=h3)).status_code == 401


async def test_upload_rules_and_sod_success() -> None:
    fake = FakeYouCam()
    async with _client(fake) as c:
        h = await _login(c, fake)
        r = await c.post(
            f"{V1}/file/sod", headers=h, json={"files": [{"content_type": "image/png", "file_name": "p.png"}]}
        )
        f = r.json()["result"]["files"][0]
        assert all(ch in f["file_id"] for ch in "+/=")
        assert f["content_type"] == "image/png" and f["file_name"] == "p.png"
        url, data = f["requests"][0]["url"], image_bytes(40, 30, "png")
        assert (await c.put(url, content=data, headers={"Content-Type": "image/png", **h})).status_code == 403
        assert (await c.put(url, content=data, headers={"Content-Type": "image/jpeg"})).status_code == 403
        # Not uploaded yet: the task is refused.
        assert (await c.post(f"{V1}/task/sod", headers=h, json=_body(src_ids=f["file_id"]))).status_code == 400
        assert (await c.put(url, content=data, headers={"Content-Type": "image/png"})).status_code == 200
        assert fake.files[f["file_id"]].data == data and fake.requests[-1].body == data
        bad_ct = {"files": [{"content_type": "image/webp", "file_name": "x"}]}
        assert (await c.post(f"{V1}/file/sod", headers=h, json=bad_ct)).status_code == 400
        assert (await c.post(f"{V1}/file/text-to-image", headers=h, json=bad_ct)).status_code == 404

        tid = await _run(c, h, "sod", _body(src_ids=f["file_id"], ext="png"))
        assert "+" in tid and "/" in tid and tid.endswith("=")
        polls = []
        for _ in range(3):
            r = await c.get(f"{V1}/task/sod", headers=h, params={"task_id": tid})
            polls.append(r.json()["result"]["status"])
            assert fake.charges == [] or polls[-1] == "success"
        assert polls == ["running", "running", "success"]
        res = r.json()["result"]["results"]
        assert res[0]["id"] == 0 and len(res[0]["data"]) == 1
        img = await _image(c, res[0]["data"][0]["url"])
        assert img.format == "PNG" and img.mode == "RGBA" and img.size == (40, 30)
        assert img.getpixel((0, 0))[3] == 0 and img.getpixel((20, 15))[3] == 255
        assert fake.balance == 99 and [(ch.task_id, ch.amount, ch.what) for ch in fake.charges] == [(tid, 1, "sod")]
        # Polling a finished task again does not charge twice.
        await c.get(f"{V1}/task/sod", headers=h, params={"task_id": tid})
        assert len(fake.charges) == 1


async def test_dedupe_on_request_id_and_src() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "colorize", image_bytes(32, 32, "jpg"))
        t1 = await _run(c, h, "colorize", _body(0, src_ids=src))
        assert await _run(c, h, "colorize", _body(0, src_ids=src)) == t1
        result = await _poll(c, h, "colorize", t1)
        assert result["status"] == "success" and len(result["results"][0]["data"]) == 2
        assert await _run(c, h, "colorize", _body(0, src_ids=src)) == t1  # still ignored after success
        assert len(fake.charges) == 1
        t2 = await _run(c, h, "colorize", _body(1, src_ids=src))
        assert t2 != t1
        await _poll(c, h, "colorize", t2)
        assert len(fake.charges) == 2 and fake.balance == 98


async def test_lost_response_then_retry_gets_same_task() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "sod", image_bytes(16, 16, "png"), "image/png")
        fake.fail_next(f"{V1}/task/sod", 500, after=True)
        r = await c.post(f"{V1}/task/sod", headers=h, json=_body(3, src_ids=src))
        assert r.status_code == 500 and len(fake.tasks) == 1
        tid = await _run(c, h, "sod", _body(3, src_ids=src))
        assert list(fake.tasks) == [tid]
        fake.fail_next(f"{V1}/task/", 429, headers={"Retry-After": "2"})
        r = await c.get(f"{V1}/task/sod", headers=h, params={"task_id": tid})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json() == {"status": 429, "error": "Too many requests"}
        assert (await _poll(c, h, "sod", tid))["status"] == "success"


async def test_loss_rule_with_tiny_window() -> None:
    fake = FakeYouCam(loss_window_s=0.05, polls_until_done=1)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "enhance", image_bytes(16, 16, "jpg"))
        tid = await _run(c, h, "enhance", _body(src_ids=src, params={"scale": 2}))
        await anyio.sleep(0.1)
        r = await c.get(f"{V1}/task/enhance", headers=h, params={"task_id": tid})
        assert r.status_code == 400 and r.json() == {"status": 400, "error": "Invalid task ID"}
        assert fake.lost_tasks == 1 and fake.charges == [] and fake.balance == 100
        # Polling within the window keeps a task alive.
        tid2 = await _run(c, h, "enhance", _body(1, src_ids=src, params={"scale": 2}))
        assert (await _poll(c, h, "enhance", tid2))["status"] == "success"
        r = await c.get(f"{V1}/task/enhance", headers=h, params={"task_id": "nope"})
        assert r.status_code == 400 and fake.lost_tasks == 1


async def test_style_catalog_pagination() -> None:
    fake = FakeYouCam()
    async with _client(fake) as c:
        h = await _login(c, fake)
        groups, token = [], None
        while True:
            q = {"page_size": 2, **({"starting_token": token} if token else {})}
            r = (await c.get(f"{V1}/task/style-group/wig", headers=h, params=q)).json()["result"]
            groups += r["groups"]
            token = r["next_token"]
            if token is None:
                break
        assert [g["info"]["title"] for g in groups] == ["Female", "Male", "Trending"]
        assert all(g["id"] > 2**53 for g in groups)
        q = {"style_group_id": groups[0]["id"]}
        p1 = (await c.get(f"{V1}/task/style/wig", headers=h, params=q)).json()["result"]
        assert len(p1["styles"]) == 20 and p1["next_token"] is not None
        p2 = await c.get(f"{V1}/task/style/wig", headers=h, params={**q, "starting_token": p1["next_token"]})
        p2 = p2.json()["result"]
        assert len(p2["styles"]) == 5 and p2["next_token"] is None
        style = p1["styles"][1]
        assert style["id"] > 2**53 and float(style["id"]) != style["id"]  # not exact as a double
        assert set(style["info"]) == {"title", "thumb"}
        assert (await c.get(style["info"]["thumb"])).headers["content-type"] == "image/jpeg"
        for bad in ({**q, "page_size": 21}, {**q, "starting_token": "zzz"}):
            assert (await c.get(f"{V1}/task/style/wig", headers=h, params=bad)).status_code == 400
        r = await c.get(f"{V1}/task/style/wig", headers=h, params={"style_group_id": 1})
        assert r.json()["error_code"] == "InvalidStyleGroup"
        assert (await c.get(f"{V1}/task/style-group/sod", headers=h)).status_code == 404


async def test_hair_style_params_and_errors() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "hair-style", image_bytes(48, 48, "jpg"))

        async def code(params: dict | None, ext: str | None = None) -> str | None:
            r = await c.post(f"{V1}/task/hair-style", headers=h, json=_body(src_ids=src, params=params, ext=ext))
            return r.json().get("error_code")

        good = {"style_group_id": HAIR_GROUP, "style_ids": [HAIR_STYLE]}
        assert await code(None) == "InvalidParameters"
        assert await code({**good, "style_ids": HAIR_STYLE}) == "InvalidParameters"
        assert await code(good, ext="png") == "InvalidParameters"
        assert await code({**good, "style_ids": [float(HAIR_STYLE)]}) == "InvalidStyle"  # parsed as a double
        assert await code({**good, "style_ids": [HAIR_STYLE - 1]}) == "InvalidStyle"
        assert await code({**good, "style_group_id": 5}) == "InvalidStyleGroup"
        bad_shape = {"request_id": 0, "payload": {"file_sets": {"src_ids": [src]}, "actions": []}}
        assert (await c.post(f"{V1}/task/hair-style", headers=h, json=bad_shape)).status_code == 400
        tid = await _run(c, h, "hair-style", _body(src_ids=src, params=good, ext="jpg"))
        result = await _poll(c, h, "hair-style", tid)
        img = await _image(c, result["results"][0]["data"][0]["url"])
        assert img.format == "JPEG" and img.size == (48, 48)
        fake.engine_error = "error_no_face"
        tid = await _run(c, h, "hair-style", _body(1, src_ids=src, params=good))
        result = await _poll(c, h, "hair-style", tid)
        assert result["status"] == "error" and result["error"] == "error_no_face" and result["error_message"]
        assert len(fake.charges) == 1


async def test_enhance_scale_and_chaining_dst_id() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "enhance", image_bytes(30, 20, "jpg"))
        for bad in ({"scale": 3}, {}, {"scale": "2"}):
            r = await c.post(f"{V1}/task/enhance", headers=h, json=_body(src_ids=src, params=bad))
            assert r.status_code == 400
        tid = await _run(c, h, "enhance", _body(src_ids=src, params={"scale": 4}, ext="webp"))
        out = (await _poll(c, h, "enhance", tid))["results"][0]["data"][0]
        img = await _image(c, out["url"])
        assert img.format == "WEBP" and img.size == (120, 80)
        # SOD takes jpg/png/heic (seed size table): a webp result is refused, a jpg one chains.
        refused = await _poll(c, h, "sod", await _run(c, h, "sod", _body(src_ids=out["dst_id"])))
        assert refused["status"] == "error" and refused["error"] == "invalid_parameter"
        tid = await _run(c, h, "enhance", _body(1, src_ids=src, params={"scale": 4}))
        jpg = (await _poll(c, h, "enhance", tid))["results"][0]["data"][0]
        tid2 = await _run(c, h, "sod", _body(src_ids=jpg["dst_id"]))
        out2 = (await _poll(c, h, "sod", tid2))["results"][0]["data"][0]
        assert (await _image(c, out2["url"])).size == (120, 80)


async def test_aging_makeup_objremoval_text_to_image_shapes() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "aging", image_bytes(32, 32, "jpg"))
        res = (await _poll(c, h, "aging", await _run(c, h, "aging", _body(src_ids=src))))["results"][0]
        ages = [d["res_age"] for d in res["data"]]
        assert ages == sorted(ages) and len(ages) == 4
        info = res["custom_info"]
        assert info["num_of_photos"] == 4 and (info["age_min"], info["age_max"]) == (ages[0], ages[-1])
        assert 0 <= info["age_idx"] < 4

        face = await _upload(c, h, "mu-trans-rec", image_bytes(32, 32, "png"), "image/png")
        ref = await _upload(c, h, "mu-trans-rec", image_bytes(32, 32, "png"), "image/gif")
        r = await c.post(f"{V1}/task/mu-trans-rec", headers=h, json=_body(src_ids=face))
        assert r.status_code == 400  # ref_ids is required
        res = await _poll(c, h, "mu-trans-rec", await _run(c, h, "mu-trans-rec", _body(src_ids=face, ref_ids=ref)))
        assert len(res["results"][0]["data"]) == 1 and "recommendation" in res["results"][0]

        photo = await _upload(c, h, "obj-removal", image_bytes(32, 32, "jpg"))
        mask = await _upload(c, h, "obj-removal", image_bytes(32, 32, "png"), "image/png")
        assert (await c.post(f"{V1}/task/obj-removal", headers=h, json=_body(src_ids=photo))).status_code == 400
        tid = await _run(c, h, "obj-removal", _body(src_ids=photo, mask_ids=mask, ext="webp"))
        assert (await _poll(c, h, "obj-removal", tid))["status"] == "success"

        params = {"prompt": "a red chair", "style_group_id": catalog("text-to-image")[1][0]}
        params["style_ids"] = [catalog("text-to-image")[1][2][0][0]]
        tid = await _run(c, h, "text-to-image", _body(params=params))
        url = (await _poll(c, h, "text-to-image", tid))["results"][0]["data"][0]["url"]
        assert (await _image(c, url)).format == "JPEG"
        with_files = _body(1, params=params, src_ids=src)
        assert (await c.post(f"{V1}/task/text-to-image", headers=h, json=with_files)).status_code == 400
        assert (await c.post(f"{V1}/task/nope", headers=h, json=_body(src_ids=src))).status_code == 404


async def test_credits_expired_entry_history_and_insufficiency() -> None:
    fake = FakeYouCam(credits=2, polls_until_done=0, costs={"colorize": 2})
    async with _client(fake) as c:
        h = await _login(c, fake)
        now_ms = time.time() * 1000
        entries = (await c.get(f"{V1}/client/credit", headers=h)).json()["results"]
        assert {e["type"] for e in entries} <= {"ApiSubsToken", "ApiPaygToken"}
        assert any(e["expiry"] < now_ms for e in entries)
        assert sum(e["amount_dec"] for e in entries if e["expiry"] > now_ms) == 2 == fake.balance
        src = await _upload(c, h, "colorize", image_bytes(16, 16, "jpg"))
        await _poll(c, h, "colorize", await _run(c, h, "colorize", _body(src_ids=src)))
        assert fake.balance == 0
        r = await c.post(f"{V1}/task/colorize", headers=h, json=_body(1, src_ids=src))
        assert r.status_code == 400 and r.json()["error_code"] == "CreditInsufficiency"
        entries = (await c.get(f"{V1}/client/credit", headers=h)).json()["results"]
        assert sum(e["amount_dec"] for e in entries if e["expiry"] > now_ms) == 0
        hist = (await c.get(f"{V1}/client/credit/history", headers=h, params={"page_size": 30})).json()["result"]
        assert hist["next_token"] is None and len(hist["history"]) == 1
        item = hist["history"][0]
        assert item["action"] == "api_colorize" and item["target_id"] == fake.charges[0].task_id
        assert item["info"]["credits"][0]["amount_dec"] == -2
        assert (await c.get(f"{V1}/client/credit/history", headers=h, params={"page_size": 31})).status_code == 400


async def test_rate_limit_sliding_window() -> None:
    fake = FakeYouCam(rate_limits=[(3, 60.0), (100, 300.0)])
    async with _client(fake) as c:
        h = await _login(c, fake)
        codes = [(await c.get(f"{V1}/client/credit", headers=h)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await c.get(f"{V1}/client/credit", headers=h)
        assert r.json() == {"status": 429, "error": "Too many requests"} and int(r.headers["retry-after"]) >= 1
        assert fake.rate_limited == 2
    fake = FakeYouCam(rate_limits=None)
    async with _client(fake) as c:
        h = await _login(c, fake)
        for _ in range(5):
            assert (await c.get(f"{V1}/client/credit", headers=h)).status_code == 200


async def test_full_flow_over_loopback() -> None:
    fake = FakeYouCam(polls_until_done=1, delay_s=0.001)
    async with serve(fake.app) as base, _client(fake, base) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "hair-vol", image_bytes(40, 40, "jpg"), "image/jpeg")
        params = {"style_group_id": catalog("hair-vol")[2][0], "style_ids": [catalog("hair-vol")[2][2][2][0]]}
        result = await _poll(c, h, "hair-vol", await _run(c, h, "hair-vol", _body(src_ids=src, params=params)))
        url = result["results"][0]["data"][0]["url"]
        assert url.startswith(base + "/results/")
        assert (await _image(c, url)).size == (40, 40)
        task_poll = next(r for r in fake.requests if r.method == "GET" and r.path == f"{V1}/task/hair-vol")
        assert task_poll.query["task_id"] in fake.tasks
        assert fake.requests[1].json == {"files": [{"content_type": "image/jpeg", "file_name": "a"}]}


async def test_soonest_expiring_units_go_first_and_bad_bytes_fail_uncharged() -> None:
    fake = FakeYouCam(polls_until_done=0)
    fake.add_credits(5, expires_in_s=3600)
    assert fake.balance == 105
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "sod", image_bytes(16, 16, "png"), "image/png")
        await _poll(c, h, "sod", await _run(c, h, "sod", _body(src_ids=src)))
        soon = fake.credit_entries[-1]
        assert soon.amount_dec == 4 and fake.history[0]["info"]["credits"][0]["id"] == soon.id
        junk = await _upload(c, h, "sod", b"not an image", "image/png")
        result = await _poll(c, h, "sod", await _run(c, h, "sod", _body(src_ids=junk)))
        assert result["status"] == "error" and result["error"] == "error_decode_image"
        assert fake.balance == 104 and len(fake.charges) == 1
        fake.balance = 0
        r = await c.post(f"{V1}/task/sod", headers=h, json=_body(7, src_ids=src))
        assert r.json() == {
            "status": 400,
            "error": "Insufficient credit",
            "error_code": "CreditInsufficiency",
        }


# -- request_id dedupe and the size table, as the seed says ----------------------------------------------


async def test_same_source_and_request_id_is_the_old_task_whatever_else_changed() -> None:
    fake = FakeYouCam(polls_until_done=0)
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "obj-removal", image_bytes(40, 40, "jpg"))
        masks = [await _upload(c, h, "obj-removal", image_bytes(40, 40, "png"), "image/png") for _ in range(2)]
        first = await _run(c, h, "obj-removal", _body(7, src_ids=src, mask_ids=masks[0]))
        again = await _run(c, h, "obj-removal", _body(7, ext="webp", src_ids=src, mask_ids=masks[1]))
        other = await _run(c, h, "obj-removal", _body(8, src_ids=src, mask_ids=masks[1]))
        for tid in (first, other):
            assert (await _poll(c, h, "obj-removal", tid))["status"] == "success"
    assert again == first != other  # a new mask does not make a new task; a new request_id does
    assert [ch.task_id for ch in fake.charges] == [first, other]


def _noise_png(width: int, height: int) -> bytes:
    img = Image.frombytes("RGB", (width, height), secrets.token_bytes(width * height * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("feature", "data", "ct", "error"),
    [
        ("hair-style", image_bytes(200, 200, "png"), "image/png", "invalid_parameter"),  # jpg only
        ("hair-bang", image_bytes(1100, 600, "jpg"), "image/jpg", "error_exceed_max_image_size"),
        ("colorize", image_bytes(4100, 100, "jpg"), "image/jpg", "error_exceed_max_image_size"),
        ("sod", _noise_png(1900, 1800), "image/png", "exceed_max_filesize"),  # >= 10,000,000 bytes
    ],
)
async def test_the_engine_enforces_the_size_table(feature: str, data: bytes, ct: str, error: str) -> None:
    fake = FakeYouCam(polls_until_done=0)
    hair = feature.startswith("hair")
    params = {"style_group_id": catalog(feature)[0][0], "style_ids": [catalog(feature)[0][2][0][0]]} if hair else None
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, feature, data, ct)
        body = _body(src_ids=src, params=params)
        result = await _poll(c, h, feature, await _run(c, h, feature, body))
    assert (result["status"], result["error"]) == ("error", error) and fake.charges == []


@pytest.mark.parametrize(("width", "fraction", "ok"), [(1000, 0.2, True), (1000, 0.1, False), (600, 0.2, False)])
async def test_a_face_under_128_px_is_no_face(width: int, fraction: float, ok: bool) -> None:
    fake = FakeYouCam(polls_until_done=0, face_width_fraction=fraction)
    group, styles = catalog("hair-vol")[0][0], catalog("hair-vol")[0][2]
    async with _client(fake) as c:
        h = await _login(c, fake)
        src = await _upload(c, h, "hair-vol", image_bytes(width, 500, "jpg"))
        body = _body(src_ids=src, params={"style_group_id": group, "style_ids": [styles[0][0]]})
        result = await _poll(c, h, "hair-vol", await _run(c, h, "hair-vol", body))
    assert (result["status"] == "success") is ok
    if not ok:
        assert result["error"] == "error_no_face"
