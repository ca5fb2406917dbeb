-- A SQLite workload for `heaplab record`: inserts, an index, joins,
-- aggregation, deletes and a vacuum, in an in-memory database.
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, payload TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)
INSERT INTO item SELECT i, 'name-' || i, i % 97, hex(randomblob(8 + i % 120)) FROM n;
CREATE INDEX item_grp ON item(grp, name);
CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT);
INSERT INTO grp SELECT DISTINCT grp, 'group ' || grp FROM item;
SELECT g.label, count(*), sum(length(i.payload)) FROM item i JOIN grp g ON g.id = i.grp GROUP BY g.label ORDER BY 2 DESC LIMIT 3;
DELETE FROM item WHERE id % 3 = 0;
UPDATE item SET payload = payload || payload WHERE grp < 20;
VACUUM;
SELECT count(*), max(length(payload)) FROM item;
