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
        match TABLE.iter().find(|(k, _, _)| *k == key) {
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

#[rustfmt::skip]
const TABLE: &[(&str, &str, &str)] = &[
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
    ("forbidden_csrf", "Форма устарела или отправлена не отсюда. Обновите страницу и попробуйте снова.", "The form expired or was not sent from this site. Reload the page and try again."),
    ("not_found", "Страница не найдена.", "Page not found."),
    ("server_error", "Внутренняя ошибка. Подробности в журнале сервера.", "Internal error. See the server log for details."),
];
