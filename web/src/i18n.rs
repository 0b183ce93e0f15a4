//! Russian (the users' language, default) and English labels. One table, so a missing
//! translation is a missing row, visible in review.

use actix_web::HttpRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

pub const COOKIE: &str = "lang";

impl Lang {
    pub fn from_request(req: &HttpRequest) -> Lang {
        match req.cookie(COOKIE).as_ref().map(|c| c.value()) {
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The label for `key`; the key itself when the table has no row (shows up in review).
    pub fn t(self, key: &str) -> &'static str {
        match TABLES
            .iter()
            .flat_map(|t| t.iter())
            .find(|(k, _, _)| *k == key)
        {
            Some((_, ru, en)) => match self {
                Lang::Ru => ru,
                Lang::En => en,
            },
            None => {
                tracing::warn!(key, "missing translation");
                "?"
            }
        }
    }
}

/// Each screen module keeps its own labels next to its handlers.
const TABLES: &[&[(&str, &str, &str)]] = &[
    BASE,
    crate::routes::bundles::LABELS,
    crate::routes::runs::LABELS,
    crate::routes::auth::LABELS,
];

#[rustfmt::skip]
const BASE: &[(&str, &str, &str)] = &[
    ("app", "Связка", "Svyazka"),
    ("providers", "Провайдеры", "Providers"),
    ("bundles", "Связки", "Bundles"),
    ("runs", "Запуски", "Runs"),
    ("logout", "Выйти", "Sign out"),
    ("login", "Вход", "Sign in"),
    ("login_button", "Войти", "Sign in"),
    ("username", "Логин", "Username"),
    ("password", "Пароль", "Password"),
    ("password_repeat", "Пароль ещё раз", "Repeat password"),
    ("setup", "Первый запуск", "First start"),
    ("setup_intro", "Создайте учётную запись администратора. Она понадобится для входа.", "Create the administrator account you will sign in with."),
    ("setup_button", "Создать администратора", "Create administrator"),
    ("bad_login", "Неверный логин или пароль.", "Wrong username or password."),
    ("too_many_attempts", "Слишком много неудачных попыток. Попробуйте позже.", "Too many failed attempts. Try again later."),
    ("err_username", "Логин: от 3 до 64 символов.", "Username: 3 to 64 characters."),
    ("err_password_len", "Пароль: не короче 10 символов.", "Password: at least 10 characters."),
    ("err_password_match", "Пароли не совпадают.", "Passwords do not match."),
    ("add", "Добавить", "Add"),
    ("save", "Сохранить", "Save"),
    ("cancel", "Отмена", "Cancel"),
    ("delete", "Удалить", "Delete"),
    ("edit", "Изменить", "Edit"),
    ("name", "Наименование", "Name"),
    ("type", "Тип", "Type"),
    ("status", "Статус", "Status"),
    ("empty_providers", "Провайдеров пока нет. Нажмите «Добавить», чтобы подключить RetailCRM или мессенджер.", "No providers yet. Click Add to connect RetailCRM or a messenger."),
    ("empty_bundles", "Связок пока нет.", "No bundles yet."),
    ("empty_runs", "Запусков пока нет.", "No runs yet."),
    ("add_provider", "Добавить провайдера", "Add provider"),
    ("choose_type", "Выберите провайдера", "Choose the provider type"),
    ("kind_retailcrm_hint", "CRM-система: контакты, сделки (заказы), чаты", "CRM: contacts, deals (orders), chats"),
    ("kind_chatapi_hint", "WhatsApp через шлюз ChatAPI (chat-api.com, 1msg.io)", "WhatsApp through a ChatAPI gateway (chat-api.com, 1msg.io)"),
    ("kind_telegram_hint", "Бот Telegram (токен от @BotFather)", "Telegram bot (token from @BotFather)"),
    ("name_hint", "минимум 5 символов", "at least 5 characters"),
    ("domain", "Домен (domain)", "Domain"),
    ("domain_hint", "например: shop, shop.retailcrm.ru или https://crm.myshop.ru", "e.g. shop, shop.retailcrm.ru or https://crm.myshop.ru"),
    ("api_key", "apiKey", "API key"),
    ("api_key_hint", "ключ должен быть ограничен одним магазином и иметь активированные «Чаты»", "the key must be restricted to one store and have «Chats» activated"),
    ("api_url", "API URL инстанса", "Instance API URL"),
    ("api_url_hint", "например: https://api.chat-api.com/instance123456", "e.g. https://api.chat-api.com/instance123456"),
    ("telegram_api", "Адрес Bot API (необязательно)", "Bot API address (optional)"),
    ("token", "Токен", "Token"),
    ("bot_token", "Токен бота", "Bot token"),
    ("secret_kept", "Оставьте как есть, чтобы сохранить текущий ключ", "Leave as is to keep the current key"),
    ("save_checking", "Сохранить (ключ будет проверен)", "Save (the key will be checked)"),
    ("check_ok", "работает", "working"),
    ("check_error", "ошибка", "error"),
    ("last_check", "Последняя проверка", "Last check"),
    ("check_again", "Проверить снова", "Check again"),
    ("base_url", "Адрес аккаунта", "Account URL"),
    ("store", "Магазин", "Store"),
    ("trigger_setup", "Настройка триггера в RetailCRM", "Trigger set-up in RetailCRM"),
    ("trigger_intro", "Создайте триггер (Настройки → Триггеры → Создать триггер), добавьте действие «Отправить HTTP-запрос» и заполните:", "Create a trigger (Settings → Triggers → Create trigger), add the action «Send HTTP request» and fill in:"),
    ("address", "Адрес", "Address"),
    ("http_method", "HTTP метод", "HTTP method"),
    ("send_params", "Передавать параметры", "Send parameters"),
    ("custom_body", "Указать тело запроса самостоятельно", "Custom request body"),
    ("request_body", "Тело запроса", "Request body"),
    ("copy", "Копировать", "Copy"),
    ("rotate_secret", "Сменить секрет адреса", "Rotate the address secret"),
    ("rotate_confirm", "Старый адрес перестанет работать. Продолжить?", "The old address will stop working. Continue?"),
    ("delete_confirm", "Удалить провайдера?", "Delete this provider?"),
    ("in_use", "Провайдер используется в связках", "The provider is used by bundles"),
    ("webhook_address", "Адрес вебхука", "Webhook address"),
    ("chatapi_webhook_set", "Адрес вебхука установлен в шлюзе автоматически.", "The webhook address was set at the gateway automatically."),
    ("chatapi_webhook_manual", "Установите этот адрес вебхука в настройках шлюза:", "Set this webhook address in the gateway's settings:"),
    ("telegram_mode_webhook", "Получение сообщений: вебхук Telegram (адрес https).", "Receiving messages: Telegram webhook (https address)."),
    ("telegram_mode_polling", "Получение сообщений: опрос getUpdates (адрес сервера не https, Telegram не может до него достучаться).", "Receiving messages: getUpdates polling (the server address is not https, Telegram cannot reach it)."),
    ("bot", "Бот", "Bot"),
    ("instance_status", "Статус инстанса", "Instance status"),
    ("forbidden_csrf", "Форма устарела или отправлена не отсюда. Обновите страницу и попробуйте снова.", "The form expired or was not sent from this site. Reload the page and try again."),
    ("not_found", "Страница не найдена.", "Page not found."),
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
    ("server_error", "Внутренняя ошибка. Подробности в журнале сервера.", "Internal error. See the server log for details."),
];
