"""Every text the bot sends, in English and Russian: one catalog per language.

Handlers never write text themselves; they call `t(lang, key, **values)`. Values are
HTML-escaped here (the bot sends HTML), so a project name or a log line can never break
Telegram's parser.
"""

from __future__ import annotations

import html
from typing import Any

LANGS = ("en", "ru")

EN: dict[str, str] = {
    "menu.title": "<b>controlplane</b>: choose what to do",
    "menu.projects": "📦 Projects",
    "menu.add": "➕ Add project",
    "menu.launch": "🚀 Run a third-party repository",
    "menu.load": "📊 System load",
    "menu.help": "❓ Help",
    "back": "⬅️ Back",
    "cancel": "✖️ Cancel",
    "yes": "✅ Yes, do it",
    "no": "✖️ No",
    "projects.title": "<b>Projects</b>",
    "projects.none": "No projects yet. Add one with ➕ Add project.",
    "project.title": "<b>{name}</b> · {branch} · poll {poll} · policy {policy}",
    "project.live": "prod: {prod} · test: {test}",
    "btn.status": "ℹ️ Status",
    "btn.logs": "📜 Logs",
    "btn.logs_test": "📜 Test logs",
    "btn.logfile": "📎 Full log",
    "btn.follow": "👁 Follow",
    "btn.config": "🔐 Config",
    "btn.poll": "⏱ Poll interval",
    "btn.policy": "🔀 On new commit",
    "btn.test": "🧪 Test deploy",
    "btn.deploy": "🚢 Deploy to prod",
    "btn.rollback": "⏪ Rollback",
    "btn.start": "▶️ Start",
    "btn.stop": "⏹ Stop",
    "btn.restart": "🔄 Restart",
    "btn.output_on": "🗒 Output to chat: on",
    "btn.output_off": "🗒 Output to chat: off",
    "btn.remove": "🗑 Remove project",
    "btn.deploy_key": "🔑 Deploy key",
    "btn.new_key": "🔄 New key",
    "btn.forget_hosts": "🧹 Forget pinned hosts",
    "key.title": "🔑 Deploy key of <b>{name}</b>, for an ssh repository (git@host:owner/repo). "
    "Add it to the repository as a <b>read-only deploy key</b> "
    "(GitHub: Settings → Deploy keys):\n<code>{public}</code>",
    "key.hosts": "Pinned ssh host keys (compare them with the ones your git host publishes):",
    "key.no_hosts": "No host key pinned yet: the first ssh fetch pins it and tells you.",
    "key.hosts_forgotten": "Pinned host keys forgotten: the next fetch pins and reports them.",
    "confirm.new_key": "Make a new deploy key for <b>{name}</b>? The current one stops working: "
    "add the new one to the repository and remove the old one there.",
    "btn.promote": "✅ Promote #{n}",
    "btn.discard": "🗑 Discard",
    "btn.extend": "⏳ Extend +{seconds}s",
    "btn.prod_vars": "Prod variables",
    "btn.test_vars": "Test variables",
    "btn.add_vars": "➕ Add KEY=VALUE",
    "btn.delete_var": "🗑 {var}",
    "btn.typed": "⌨️ Type a duration",
    "btn.more": "Older ▶️",
    "btn.test_mode": "🧪 Test",
    "btn.prod_mode": "🚢 Prod",
    "config.title": "<b>{name}</b> {slot} variables (values masked):",
    "config.none": "<b>{name}</b> has no {slot} variables yet.",
    "config.ask": "Send one or more lines <code>KEY=VALUE</code> for <b>{name}</b> {slot}. "
    "Your message is deleted once saved. /cancel to stop.",
    "config.saved": "Saved {keys} for <b>{name}</b> {slot}. Your message was deleted.",
    "config.deleted": "Deleted {var} from <b>{name}</b> {slot}.",
    "poll.title": "How often should <b>{name}</b> check for new commits? Now: {poll}",
    "poll.set": "<b>{name}</b> now polls every {poll}.",
    "policy.title": "What should a new commit of <b>{name}</b> do? Now: {policy}",
    "policy.notify": "Notify me",
    "policy.test": "Test it",
    "policy.promote": "Test, then promote if it passed",
    "policy.set": "<b>{name}</b>: on a new commit → {policy}.",
    "test.title": "How long should the test of <b>{name}</b> run?",
    "test.ask": "Send the duration, for example 90, 45s, 10m. /cancel to stop.",
    "rollback.title": "Roll back <b>{name}</b> prod to which commit?",
    "rollback.none": "No numbered commits yet.",
    "confirm.deploy": "Deploy the branch head of <b>{name}</b> to <b>prod</b>?",
    "confirm.promote": "Promote #{n} of <b>{name}</b> to <b>prod</b>?{diff}",
    "confirm.rollback": "Roll <b>{name}</b> prod back to #{n}?",
    "confirm.stop": "Stop <b>{name}</b> <b>prod</b>?",
    "confirm.remove": "Remove <b>{name}</b>? Its slots stop; its releases, history and data "
    "folders (APP_DATA_DIR) are deleted; files you put in its folder stay.",
    "diff.none": "\nTest and prod variables are the same.",
    "diff.some": "\nVariables that differ between test and prod: {keys}",
    "removed": "<b>{name}</b> removed.",
    "output.set": "Output of <b>{name}</b>'s commands to chat: {state}.",
    "op.started": "⏳ <b>{op}</b> {name}",
    "op.ok": "✅ <b>{op}</b> {name}: {text}",
    "op.failed": "❌ <b>{op}</b> {name}: {text}",
    "op.cancelled": "✖️ <b>{op}</b> {name}: cancelled",
    "op.busy": "⏳ {text}",
    "op.lines": "{omitted} earlier lines left out",
    "card.test": "🧪 <b>Test of {name} #{n}</b>\n{state}",
    "card.verdict_ok": "✅ <b>Test of {name} #{n} passed</b>\n{reason}",
    "card.verdict_bad": "❌ <b>Test of {name} #{n} failed</b>\n{reason}",
    "add.name": "New project. Send its <b>name</b> (a-z, 0-9, - and _). /cancel to stop.",
    "add.repo": "Send the <b>repository URL</b> (https://…, git@host:owner/repo).",
    "add.path": "Send the <b>project folder</b> the app runs from (absolute, e.g. /srv/{name}).",
    "add.branch": "Send the <b>branch</b>, or /skip for main.",
    "add.checking": "Checking the repository…",
    "add.done": "✅ Added <b>{name}</b>: numbered {n} commits, head #{n} {sha} {subject}.",
    "add.warning": "⚠️ {warning}",
    "bad": "⚠️ {reason}",
    "cancelled": "Cancelled.",
    "launch.url": "Send the <b>repository URL</b> to run. /cancel to stop.",
    "launch.mode": "Run it in the test slot or straight in prod?",
    "stale.project": "That project no longer exists.",
    "stale.test": "That test has finished.",
    "stale.button": "That button is out of date; open the menu again.",
    "confirm.used": "Already done: this confirmation was used. Open the menu again to repeat it.",
    "confirm.expired": "This confirmation has expired; open it again.",
    "toast.started": "Started",
    "toast.busy": "{text}",
    "stranger": "⚠️ Someone who is not an admin wrote to the bot: chat {chat} ({who}). "
    "Ignored. (Each person is reported once an hour; others who write soon after are summed "
    "up every 10 minutes.)",
    "strangers.more": "⚠️ {count} more people who are not admins wrote to the bot "
    "({updates} updates): {names}. Ignored.",
    "strangers.one": "{who} in chat {chat} (×{count})",
    "strangers.others": " and {count} more",
    "error": "⚠️ Internal error: {error}{count}",
    "error.count": " (×{count} in the last 10 minutes)",
    "event.repeat": " (×{count})",
    "help": "<b>Commands</b>\n"
    "/projects — your projects\n/status NAME — state of a project\n"
    "/deploy NAME — deploy the branch head to prod\n/test NAME [SECONDS] — test deploy\n"
    "/promote NAME — promote the tested release\n/rollback NAME N — prod back to commit N\n"
    "/logs NAME — last 30 lines\n/load — system load\n/cancel — stop what you are typing",
    "usage": "Usage: {usage}",
    "nothing": "Nothing to show yet.",
    "logs.title": "<b>{name}</b> {slot}: last {n} lines",
    "logs.empty": "<b>{name}</b> {slot} has printed nothing yet.",
    "logs.follow": "👁 <b>{name}</b> {slot}: new lines for {seconds} s",
    "logs.follow_end": "👁 <b>{name}</b> {slot}: followed for {seconds} s, ended",
    "logs.following": "Already following {name} {slot} in the message above: extended to "
    "{seconds} s from now.",
    "status.title": "<b>{name}</b>",
    "cmd.projects": "your projects",
    "cmd.status": "state of a project",
    "cmd.deploy": "deploy to prod",
    "cmd.test": "test deploy",
    "cmd.promote": "promote the tested release",
    "cmd.rollback": "roll prod back to commit N",
    "cmd.logs": "last lines of a project's log",
    "cmd.load": "system load",
    "cmd.help": "help",
    "cmd.cancel": "stop what you are typing",
}

RU: dict[str, str] = {
    "menu.title": "<b>controlplane</b>: что сделать?",
    "menu.projects": "📦 Проекты",
    "menu.add": "➕ Добавить проект",
    "menu.launch": "🚀 Запустить чужой репозиторий",
    "menu.load": "📊 Нагрузка",
    "menu.help": "❓ Справка",
    "back": "⬅️ Назад",
    "cancel": "✖️ Отмена",
    "yes": "✅ Да, выполнить",
    "no": "✖️ Нет",
    "projects.title": "<b>Проекты</b>",
    "projects.none": "Проектов пока нет. Добавьте: ➕ Добавить проект.",
    "project.title": "<b>{name}</b> · {branch} · опрос {poll} · политика {policy}",
    "project.live": "прод: {prod} · тест: {test}",
    "btn.status": "ℹ️ Состояние",
    "btn.logs": "📜 Логи",
    "btn.logs_test": "📜 Логи теста",
    "btn.logfile": "📎 Весь лог",
    "btn.follow": "👁 Следить",
    "btn.config": "🔐 Переменные",
    "btn.poll": "⏱ Частота опроса",
    "btn.policy": "🔀 При новом коммите",
    "btn.test": "🧪 Тестовый деплой",
    "btn.deploy": "🚢 Деплой в прод",
    "btn.rollback": "⏪ Откат",
    "btn.start": "▶️ Запустить",
    "btn.stop": "⏹ Остановить",
    "btn.restart": "🔄 Перезапустить",
    "btn.output_on": "🗒 Вывод в чат: вкл",
    "btn.output_off": "🗒 Вывод в чат: выкл",
    "btn.remove": "🗑 Удалить проект",
    "btn.deploy_key": "🔑 Ключ доступа",
    "btn.new_key": "🔄 Новый ключ",
    "btn.forget_hosts": "🧹 Забыть ключи хостов",
    "key.title": "🔑 Ключ доступа (deploy key) проекта <b>{name}</b> для ssh-репозитория "
    "(git@host:owner/repo). Добавьте его в репозиторий как <b>deploy key только для чтения</b> "
    "(GitHub: Settings → Deploy keys):\n<code>{public}</code>",
    "key.hosts": "Закреплённые ключи ssh-хостов (сверьте с опубликованными вашим git-хостингом):",
    "key.no_hosts": "Ключ хоста ещё не закреплён: первое обращение по ssh закрепит его и сообщит.",
    "key.hosts_forgotten": "Ключи хостов забыты: следующее обращение закрепит их заново и сообщит.",
    "confirm.new_key": "Создать новый ключ доступа для <b>{name}</b>? Текущий перестанет "
    "работать: добавьте новый в репозиторий, а старый удалите там.",
    "btn.promote": "✅ В прод #{n}",
    "btn.discard": "🗑 Отменить тест",
    "btn.extend": "⏳ Продлить +{seconds}с",
    "btn.prod_vars": "Переменные прода",
    "btn.test_vars": "Переменные теста",
    "btn.add_vars": "➕ Добавить KEY=VALUE",
    "btn.delete_var": "🗑 {var}",
    "btn.typed": "⌨️ Ввести длительность",
    "btn.more": "Старше ▶️",
    "btn.test_mode": "🧪 Тест",
    "btn.prod_mode": "🚢 Прод",
    "config.title": "<b>{name}</b>, переменные {slot} (значения скрыты):",
    "config.none": "У <b>{name}</b> пока нет переменных {slot}.",
    "config.ask": "Пришлите одну или несколько строк <code>KEY=VALUE</code> для <b>{name}</b> "
    "{slot}. Сообщение будет удалено после сохранения. /cancel — отмена.",
    "config.saved": "Сохранено {keys} для <b>{name}</b> {slot}. Ваше сообщение удалено.",
    "config.deleted": "{var} удалена из <b>{name}</b> {slot}.",
    "poll.title": "Как часто <b>{name}</b> проверять новые коммиты? Сейчас: {poll}",
    "poll.set": "<b>{name}</b> теперь проверяется каждые {poll}.",
    "policy.title": "Что делать с новым коммитом <b>{name}</b>? Сейчас: {policy}",
    "policy.notify": "Сообщить",
    "policy.test": "Протестировать",
    "policy.promote": "Протестировать и выкатить, если тест пройден",
    "policy.set": "<b>{name}</b>: при новом коммите → {policy}.",
    "test.title": "Сколько длится тест <b>{name}</b>?",
    "test.ask": "Пришлите длительность, например 90, 45s, 10m. /cancel — отмена.",
    "rollback.title": "На какой коммит откатить прод <b>{name}</b>?",
    "rollback.none": "Пронумерованных коммитов пока нет.",
    "confirm.deploy": "Выкатить голову ветки <b>{name}</b> в <b>прод</b>?",
    "confirm.promote": "Выкатить #{n} <b>{name}</b> в <b>прод</b>?{diff}",
    "confirm.rollback": "Откатить прод <b>{name}</b> на #{n}?",
    "confirm.stop": "Остановить <b>прод</b> <b>{name}</b>?",
    "confirm.remove": "Удалить <b>{name}</b>? Слоты остановятся; релизы, история и папки данных "
    "(APP_DATA_DIR) будут удалены; ваши файлы в папке проекта останутся.",
    "diff.none": "\nПеременные теста и прода совпадают.",
    "diff.some": "\nРазличаются переменные: {keys}",
    "removed": "<b>{name}</b> удалён.",
    "output.set": "Вывод команд <b>{name}</b> в чат: {state}.",
    "op.started": "⏳ <b>{op}</b> {name}",
    "op.ok": "✅ <b>{op}</b> {name}: {text}",
    "op.failed": "❌ <b>{op}</b> {name}: {text}",
    "op.cancelled": "✖️ <b>{op}</b> {name}: отменено",
    "op.busy": "⏳ {text}",
    "op.lines": "пропущено строк выше: {omitted}",
    "card.test": "🧪 <b>Тест {name} #{n}</b>\n{state}",
    "card.verdict_ok": "✅ <b>Тест {name} #{n} пройден</b>\n{reason}",
    "card.verdict_bad": "❌ <b>Тест {name} #{n} не пройден</b>\n{reason}",
    "add.name": "Новый проект. Пришлите <b>имя</b> (a-z, 0-9, - и _). /cancel — отмена.",
    "add.repo": "Пришлите <b>URL репозитория</b> (https://…, git@host:owner/repo).",
    "add.path": "Пришлите <b>папку проекта</b>, из которой запускается приложение "
    "(абсолютный путь, например /srv/{name}).",
    "add.branch": "Пришлите <b>ветку</b> или /skip для main.",
    "add.checking": "Проверяю репозиторий…",
    "add.done": "✅ Добавлен <b>{name}</b>: пронумеровано коммитов: {n}, голова #{n} {sha} "
    "{subject}.",
    "add.warning": "⚠️ {warning}",
    "bad": "⚠️ {reason}",
    "cancelled": "Отменено.",
    "launch.url": "Пришлите <b>URL репозитория</b> для запуска. /cancel — отмена.",
    "launch.mode": "Запустить в тестовом слоте или сразу в проде?",
    "stale.project": "Этого проекта больше нет.",
    "stale.test": "Этот тест уже закончился.",
    "stale.button": "Кнопка устарела; откройте меню заново.",
    "confirm.used": "Уже выполнено: это подтверждение использовано. Чтобы повторить, откройте "
    "меню заново.",
    "confirm.expired": "Это подтверждение устарело; откройте его заново.",
    "toast.started": "Запущено",
    "toast.busy": "{text}",
    "stranger": "⚠️ Боту написал не администратор: чат {chat} ({who}). Проигнорировано. "
    "(О каждом человеке — не чаще раза в час; о тех, кто напишет следом, — сводка раз в 10 "
    "минут.)",
    "strangers.more": "⚠️ Боту написали ещё не администраторы: {count} (обновлений: {updates}): "
    "{names}. Проигнорировано.",
    "strangers.one": "{who} в чате {chat} (×{count})",
    "strangers.others": " и ещё {count}",
    "error": "⚠️ Внутренняя ошибка: {error}{count}",
    "error.count": " (×{count} за последние 10 минут)",
    "event.repeat": " (×{count})",
    "help": "<b>Команды</b>\n"
    "/projects — ваши проекты\n/status NAME — состояние проекта\n"
    "/deploy NAME — выкатить голову ветки в прод\n/test NAME [СЕКУНДЫ] — тестовый деплой\n"
    "/promote NAME — выкатить протестированный релиз\n/rollback NAME N — откат прода на "
    "коммит N\n/logs NAME — последние 30 строк\n/load — нагрузка\n/cancel — прервать ввод",
    "usage": "Использование: {usage}",
    "nothing": "Пока нечего показать.",
    "logs.title": "<b>{name}</b> {slot}: последние {n} строк",
    "logs.empty": "<b>{name}</b> {slot} пока ничего не вывел.",
    "logs.follow": "👁 <b>{name}</b> {slot}: новые строки в течение {seconds} с",
    "logs.follow_end": "👁 <b>{name}</b> {slot}: слежение {seconds} с закончено",
    "logs.following": "Уже слежу за {name} {slot} в сообщении выше: продлено на {seconds} с "
    "от текущего момента.",
    "status.title": "<b>{name}</b>",
    "cmd.projects": "ваши проекты",
    "cmd.status": "состояние проекта",
    "cmd.deploy": "деплой в прод",
    "cmd.test": "тестовый деплой",
    "cmd.promote": "выкатить протестированный релиз",
    "cmd.rollback": "откат прода на коммит N",
    "cmd.logs": "последние строки лога",
    "cmd.load": "нагрузка",
    "cmd.help": "справка",
    "cmd.cancel": "прервать ввод",
}

CATALOG = {"en": EN, "ru": RU}


def t(lang: str, key: str, **values: Any) -> str:
    """The text `key` in `lang` with its values HTML-escaped and filled in."""
    template = CATALOG.get(lang, EN).get(key) or EN[key]
    safe = {k: html.escape(str(v), quote=False) for k, v in values.items()}
    return template.format(**safe)


def raw(lang: str, key: str, **values: Any) -> str:
    """Like t(), for values that are HTML already (built from t() themselves)."""
    template = CATALOG.get(lang, EN).get(key) or EN[key]
    return template.format(**values)


def pick_lang(forced: str | None, telegram_code: str | None) -> str:
    """CONTROLPLANE_LANG when set, else the admin's Telegram language (ru → ru)."""
    if forced in LANGS:
        return forced
    return "ru" if (telegram_code or "").lower().startswith("ru") else "en"
