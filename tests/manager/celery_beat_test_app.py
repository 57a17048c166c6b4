"""The production Celery app with a seconds-long beat schedule, for the beat test
(``celery -A tests.manager.celery_beat_test_app beat``). Same tasks, same app settings;
only the intervals are short."""
from manager.celery_app import DAILY_SCORING_ENTRY, INTRADAY_ENTRY, make_app

app = make_app()
app.conf.beat_schedule = {
    INTRADAY_ENTRY: {**app.conf.beat_schedule[INTRADAY_ENTRY], "schedule": 1.0},
    DAILY_SCORING_ENTRY: {"task": "cohortlab.score_day", "schedule": 1.5, "kwargs": {"date": "2018-01-15"}},
}
