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
    ("activity_24h", "Запуски за 24 часа", "Runs in the last 24 hours"),
    ("activity_no_bundles", "Связок пока нет.", "No bundles yet."),
    ("activity_chart", "Запуски по часам (красным — с ошибкой)", "Runs per hour (failed in red)"),
    ("activity_runs", "Запусков", "Runs"),
    ("activity_failed", "С ошибкой", "Failed"),
    ("activity_stopped", "остановлена", "stopped"),
    ("activity_hour", "{hour} UTC: запусков {runs}, с ошибкой {failed}", "{hour} UTC: {runs} runs, {failed} failed"),
    ("activity_providers", "Последние события провайдеров", "Providers' last events"),
    ("activity_never", "ещё не было", "none yet"),
    ("activity_provider", "Провайдер", "Provider"),
    ("reach_localhost", "Публичный адрес {url} указывает на этот компьютер (localhost): RetailCRM, ChatAPI и Telegram не смогут его вызвать, вебхуки не придут.", "The public address {url} points at this computer (localhost): RetailCRM, ChatAPI and Telegram cannot call it, so no webhook will arrive."),
    ("reach_private", "Публичный адрес {url} — частный адрес внутренней сети: RetailCRM, ChatAPI и Telegram из интернета до него не достанут, вебхуки не придут.", "The public address {url} is a private network address: RetailCRM, ChatAPI and Telegram cannot reach it from the internet, so no webhook will arrive."),
    ("reach_http", "Публичный адрес {url} работает по http без TLS: RetailCRM и Telegram отправляют вебхуки только на https.", "The public address {url} is plain http without TLS: RetailCRM and Telegram send webhooks only to https."),
    ("reach_invalid", "Публичный адрес {url} не является адресом с доменом: вебхуки не придут.", "The public address {url} is not an address with a host: no webhook will arrive."),
    ("reach_fix", "Поставьте svyazka за обратный прокси с TLS (например, nginx или Caddy с сертификатом для вашего домена) и укажите этот адрес в переменной SVYAZKA_PUBLIC_URL, например https://svyazka.example.ru, затем перезапустите svyazka.", "Put svyazka behind a reverse proxy with TLS (for example nginx or Caddy with a certificate for your domain), set that address in SVYAZKA_PUBLIC_URL, for example https://svyazka.example.com, and restart svyazka."),
    ("stall_queue", "События ждут, а ни одного живого обработчика нет: связки не выполняются. Запустите хотя бы один обработчик:", "Events are waiting and no worker is alive: bundles are not running. Start at least one worker:"),
    ("stall_queue_env", "с теми же DATABASE_URL, REDIS_URL и SVYAZKA_SECRET_KEY, что у веб-процесса.", "with the same DATABASE_URL, REDIS_URL and SVYAZKA_SECRET_KEY as the web process."),
    ("stall_embedded", "События ждут, а встроенный обработчик не отвечает: связки не выполняются. Перезапустите сервер Связки и проверьте его журнал.", "Events are waiting and the built-in worker does not respond: bundles are not running. Restart the Svyazka server and check its log."),
];
