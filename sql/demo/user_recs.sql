-- Analyst example 1: what each user model recommends to one user (the first user id, for the demo).
SELECT model, rank, item_id, round(score, 4) AS score
FROM recs.latest_user_topn
WHERE user_id = (SELECT min(user_id) FROM recs.latest_user_topn)
  AND rank <= 5
ORDER BY model, rank;
