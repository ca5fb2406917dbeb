# A Python workload for `heaplab record`: dictionaries, lists, strings, JSON.
# Run with PYTHONMALLOC=malloc so that every object goes through malloc.
import json

records = [{"id": i, "name": "item-%05d" % i, "tags": ["t%d" % (i % 7), "u%d" % (i % 11)]} for i in range(2000)]
index = {}
for record in records:
    for tag in record["tags"]:
        index.setdefault(tag, []).append(record["id"])
text = json.dumps(records)
again = json.loads(text)
words = " ".join(r["name"] for r in again).split()
counts = {}
for word in words:
    counts[word[-2:]] = counts.get(word[-2:], 0) + 1
ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
print(len(text), len(index), ranked[0])
