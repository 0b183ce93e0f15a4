//! Sign-in, first start and the account page.

use super::Row;

/// Labels of the sign-in, setup and account screens.
#[rustfmt::skip]
pub const LABELS: &[Row] = &[
    ("setup_code", "Код первого запуска", "Set-up code"),
    ("setup_code_hint", "Код напечатан в консоли сервера при запуске и записан в файл setup-code в каталоге данных.", "The code was printed on the server's console at start and written to the file setup-code in the data directory."),
    ("err_setup_code", "Код не подходит. Возьмите его из консоли сервера или из файла setup-code в каталоге данных.", "Wrong code. Take it from the server's console or the file setup-code in the data directory."),
    ("too_many_sign_in_attempts", "Слишком много попыток входа. Попробуйте через 15 минут.", "Too many sign-in attempts. Try again in 15 minutes."),
    ("account", "Учётная запись", "Account"),
    ("change_password", "Смена пароля", "Change password"),
    ("current_password", "Текущий пароль", "Current password"),
    ("new_password", "Новый пароль", "New password"),
    ("new_password_repeat", "Новый пароль ещё раз", "Repeat the new password"),
    ("change_password_button", "Сменить пароль", "Change password"),
    ("change_password_note", "После смены пароля все остальные входы будут завершены.", "Changing the password signs out every other device."),
    ("err_current_password", "Текущий пароль неверен.", "The current password is wrong."),
    ("password_changed", "Пароль изменён. Остальные устройства вышли из учётной записи.", "Password changed. Every other device was signed out."),
    ("sessions_title", "Входы", "Sessions"),
    ("sessions_active", "Активных входов", "Active sessions"),
    ("sign_out_everywhere", "Выйти на всех устройствах", "Sign out on all devices"),
    ("sign_out_everywhere_hint", "Завершает все входы, включая этот: скопированные куки перестанут работать.", "Ends every session, this one included: copied cookies stop working."),
    ("sign_out_everywhere_confirm", "Завершить все входы, включая этот?", "End every session, this one included?"),
];
