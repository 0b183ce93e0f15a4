//! The home page: execution health in embedded and queue mode.

use super::Row;

#[rustfmt::skip]
pub const LABELS: &[Row] = &[
    ("home", "Обзор", "Overview"),
    ("execution", "Выполнение", "Execution"),
    ("mode", "Режим", "Mode"),
    ("mode_embedded", "встроенный (SQLite, обработчик внутри веб-процесса)", "embedded (SQLite, worker inside the web process)"),
    ("mode_queue", "очередь (PostgreSQL + Redis, отдельные процессы-обработчики)", "queue (PostgreSQL + Redis, separate worker processes)"),
    ("workers_alive", "Живых обработчиков", "Workers alive"),
    ("waiting_items", "Ждут выполнения", "Waiting to run"),
    ("oldest_waiting", "самое старое ждёт", "oldest waiting"),
    ("seconds_short", "с", "s"),
    ("worker_host", "Хост", "Host"),
    ("worker_since", "Запущен", "Started"),
    ("worker_seen", "Последний сигнал", "Last heartbeat"),
    ("worker_in_web", "в веб-процессе", "in the web process"),
    ("stall_queue", "События ждут, а ни одного живого обработчика нет: связки не выполняются. Запустите хотя бы один обработчик:", "Events are waiting and no worker is alive: bundles are not running. Start at least one worker:"),
    ("stall_queue_env", "с теми же DATABASE_URL, REDIS_URL и SVYAZKA_SECRET_KEY, что у веб-процесса.", "with the same DATABASE_URL, REDIS_URL and SVYAZKA_SECRET_KEY as the web process."),
    ("stall_embedded", "События ждут, а встроенный обработчик не отвечает: связки не выполняются. Перезапустите сервер Связки и проверьте его журнал.", "Events are waiting and the built-in worker does not respond: bundles are not running. Restart the Svyazka server and check its log."),
];
