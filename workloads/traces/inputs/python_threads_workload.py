# Two threads handing objects over: a producer thread builds 2,000 records
# (dicts, strings, lists) and puts them on a queue; the main thread takes
# them, encodes each as JSON, keeps a few and drops the rest, so most
# blocks are freed by the thread that did not allocate them. Recorded for
# heaplab's bundled multithreaded trace (workloads/traces/record.sh).
import json
import queue
import sys
import threading

ROUNDS = 2000
handover = queue.Queue(maxsize=64)


def produce():
    for i in range(ROUNDS):
        record = {
            "id": i,
            "name": "item-%05d" % i,
            "tags": ["t%d" % (i % 7), "u%d" % (i % 11)] * (1 + i % 3),
            "payload": "x" * (16 + (i * 37) % 400),
        }
        handover.put(record)
    handover.put(None)


producer = threading.Thread(target=produce)
producer.start()
kept = []
total = 0
while True:
    record = handover.get()
    if record is None:
        break
    text = json.dumps(record, sort_keys=True)
    total += len(text)
    if record["id"] % 50 == 0:
        kept.append(text)
    del record
producer.join()
print(len(kept), total, file=sys.stderr)
