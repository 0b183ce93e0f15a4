//! The home page: execution health in embedded and queue mode.

use super::Row;

#[rustfmt::skip]
pub const LABELS: &[Row] = &[
    ("home", "Обзор", "Overview"),
    ("execution", "Выполнение", "Execution"),
    ("mode", "Режим", "Mode"),
    ("mode_embedded", "встроенный (SQLite, обработчик внутри веб-процесса)", "embedded (SQLite, worker inside the web process)"),
    ("mode_queue", "очередь (PostgreSQL + Redis, отдельные процессы svyazka worker)", "queue (PostgreSQL + Redis, separate svyazka worker processes)"),
    ("workers_alive", "Живых обработчиков", "Workers alive"),
    ("waiting_items", "Ждут выполнения", "Waiting to run"),
    ("oldest_waiting", "самое старое ждёт", "oldest waiting"),
    ("seconds_short", "с", "s"),
    ("worker_host", "Хост", "Host"),
    ("worker_since", "Запущен", "Started"),
    ("worker_seen", "Последний сигнал", "Last heartbeat"),
    ("worker_in_web", "в веб-процессе", "in the web process"),
    ("stall_queue", "События ждут, а ни одного живого обработчика нет: связки не выполняются. Запустите хотя бы один процесс «svyazka worker» с теми же DATABASE_URL, REDIS_URL и SVYAZKA_SECRET_KEY.", "Events are waiting and no worker is alive: bundles are not running. Start at least one «svyazka worker» process with the same DATABASE_URL, REDIS_URL and SVYAZKA_SECRET_KEY."),
    ("stall_embedded", "События ждут, а встроенный обработчик не отвечает: связки не выполняются. Перезапустите svyazka и проверьте журнал сервера.", "Events are waiting and the built-in worker does not respond: bundles are not running. Restart svyazka and check the server log."),
];
