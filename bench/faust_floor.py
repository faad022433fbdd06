"""Faust's own cost per message here: a bare agent that takes micro-batches and acknowledges them,
nothing else (``python -m bench.faust_floor BOOTSTRAP TOPIC N [prompt|plain]``; used by the pipeline
benchmark), on the workers' event loop and consumer tuning; ``plain``: with Faust's own per-message
delivery instead of :mod:`streams.kafka.delivery`.

Prints ``messages/s`` once N messages went through. It is the ceiling of one Faust hop on this machine:
every stage of the pipeline pays it once per consumed message.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    import faust
    from mode import CrashingSupervisor

    from sentimon.settings import get_settings
    from sentimon.worker import use_event_loop
    from streams.kafka.config import faust_broker, tune_faust_consumer

    bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    delivery = sys.argv[4] if len(sys.argv) > 4 else "prompt"
    settings = get_settings()
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap, "session_timeout_s": 6})  # credentials from the settings
    tune_faust_consumer(kafka, prompt_delivery=delivery == "prompt")  # polled as the workers poll
    use_event_loop(settings.worker.event_loop)
    app = faust.App(f"faust-floor-{delivery}-{topic}", **faust_broker(kafka), web_enabled=False,
                    consumer_auto_offset_reset="earliest", topic_disable_leader=True,
                    store="memory://", stream_buffer_maxsize=8192, autodiscover=False)
    state = {"n": 0, "t0": 0.0}

    @app.agent(app.topic(topic, value_serializer="raw", key_serializer="raw"), supervisor_strategy=CrashingSupervisor)
    async def floor(stream):
        async for events in stream.noack_take(1024, within=0.1):
            state["t0"] = state["t0"] or time.perf_counter()
            state["n"] += len(events)
            for event in events:
                await stream.ack(event)
            if state["n"] >= n:
                print(f"FLOOR {n / (time.perf_counter() - state['t0']):.1f}", flush=True)
                os._exit(0)

    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
