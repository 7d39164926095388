-- The whole run registry: analysts see which version was published, rejected, and why.
CREATE TABLE pub.models.model_runs AS
SELECT * FROM models.model_runs
ORDER BY run_date, model, trained_at;
