/* c */ -- d
SELECT * FROM "lake"."t" UNION ALL SELECT range, NULL FROM range(5)