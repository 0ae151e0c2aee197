"""Streamed speech through every LB to the sandbox's real hosts: nginx passes each piece on
as it comes (the first sentence long before the last), and the access log the controller
reads carries each streamed answer's time to first audio, which the judge compares."""

from __future__ import annotations

import functools
import json
import time

import pytest

from canary.adapters.lb_log import lb_access_log
from canary.decisions.access_log import Request

pytestmark = pytest.mark.sandbox
TEXT = "Hello there. " + "The canary speaks sentence after sentence before it is promoted. " * 6


def test_streamed_speech_passes_every_lb_unbuffered_and_its_first_audio_is_logged(stable_fleet):
    from openai import OpenAI

    log = lb_access_log(stable_fleet)
    cursor = log.cursor()
    streamed_ids: list[str] = []
    for url in stable_fleet.lb_public_urls:
        client = OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=120)
        speech = functools.partial(client.audio.speech.with_streaming_response.create, model="tts-1",
                                   voice="alloy", input=TEXT, response_format="pcm", extra_body={"seed": 3})
        started = time.perf_counter()
        with speech(stream_format="audio") as response:
            arrivals = [(time.perf_counter() - started, len(part)) for part in response.iter_bytes()]
            streamed_ids.append(response.headers["x-request-id"])
            assert response.headers["x-stream-format"] == "audio" and "x-accel-buffering" not in response.headers
        first_s, total_s = arrivals[0][0], arrivals[-1][0]
        assert first_s < total_s / 2, (url, first_s, total_s, len(arrivals))  # buffered, they would be equal
        with speech(stream_format="sse") as response:
            events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]
            streamed_ids.append(response.headers["x-request-id"])
        assert events[-1]["type"] == "speech.audio.done" and len(events) > 2, (url, events[-1])
        whole = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="Hello there.",
                                                             response_format="pcm")
        assert whole.content and "x-stream-format" not in whole.headers  # not streamed: no first-audio figure
        whole_id = whole.headers["x-request-id"]

        logged: dict[str, Request] = {}
        for _ in range(20):  # nginx writes its log line when the answer is done
            requests, cursor = log.read(cursor)
            logged |= {r.request_id: r for r in requests}
            if all(i in logged for i in (*streamed_ids[-2:], whole_id)):
                break
            time.sleep(0.5)
        for request_id in streamed_ids[-2:]:
            last = logged[request_id].attempts[-1]
            assert last.first_audio_s is not None and last.response_time_s is not None, (url, last)
            assert last.first_audio_s < last.response_time_s / 2, (url, last)
        assert logged[whole_id].attempts[-1].first_audio_s is None
