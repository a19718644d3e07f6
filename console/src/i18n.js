// Strings in Russian (the default) and English, and the number, money and date
// formats of the chosen language. The choice is kept in localStorage.
const STORAGE_KEY = 'bpmc.console.lang';

const ru = {
  'app.title': 'BPM Centr — консоль',
  'app.skip': 'Перейти к содержимому',
  'app.language': 'Язык',
  'app.logout': 'Выйти',
  'app.loading': 'Загрузка…',
  'app.user': 'Пользователь {name} ({role})',
  'app.nav': 'Разделы',
  'role.admin': 'администратор',
  'role.manager': 'менеджер',
  'role.support': 'поддержка',
  'role.user': 'клиент',
  'nav.overview': 'Обзор',
  'nav.connectors': 'Коннекторы',
  'nav.users': 'Пользователи',
  'nav.financial': 'Финансы',
  'nav.errors': 'Ошибки',
  'nav.incidents': 'Инциденты',
  'nav.oncall': 'Дежурства',
  'nav.maintenance': 'Работы',
  'nav.audit': 'Аудит',
  'nav.my': 'Мои данные',
  'login.title': 'Вход',
  'login.name': 'Имя пользователя',
  'login.password': 'Пароль',
  'login.submit': 'Войти',
  'login.wait': 'Слишком много попыток. Повторите через {seconds} с.',
  'error.network': 'Сервер недоступен. Проверьте соединение и повторите.',
  'error.status': 'Ошибка {status}',
  'error.field': 'Поле: {field}',
  'error.retry': 'Повторите через {seconds} с.',
  'error.forbidden': 'Этот раздел недоступен вашей роли.',
  'error.notfound': 'Страница не найдена.',
  'filter.title': 'Фильтры',
  'filter.from': 'С даты',
  'filter.to': 'До даты (не включая)',
  'filter.granularity': 'Шаг',
  'filter.connector': 'Коннектор',
  'filter.connector.any': 'все коннекторы',
  'filter.customer': 'Клиент',
  'filter.customer.hint': 'Идентификатор клиента (владельца ключей API); пусто — все клиенты',
  'filter.reason': 'Причина доступа',
  'filter.reason.hint': 'Номер обращения: обязателен для поддержки при выборе клиента',
  'filter.apply': 'Показать',
  'gran.hour': 'час',
  'gran.day': 'день',
  'gran.week': 'неделя',
  'gran.month': 'месяц',
  'export.title': 'Выгрузка',
  'export.csv': 'CSV',
  'export.xlsx': 'XLSX',
  'export.pdf': 'PDF',
  'export.label': 'Скачать {format}: {what}',
  'export.support': 'Чтобы выгрузить данные клиента, укажите причину доступа и нажмите «Показать».',
  'period.line': 'Период: {from} — {to} (отчётный часовой пояс {tz}); данные на {asof}. Время показано в поясе {local}.',
  'period.customer': 'Клиент: {customer}',
  'overview.title': 'Обзор платформы',
  'overview.active_users': 'Активные пользователи',
  'overview.active_subscriptions': 'Активные подписки',
  'overview.operations': 'Операции',
  'overview.error_rate': 'Доля ошибок',
  'overview.revenue': 'Доход',
  'overview.revenue.hidden': 'недоступно',
  'overview.series': 'Операции и ошибки по периодам',
  'overview.connectors': 'По коннекторам',
  'col.id': 'ID',
  'col.name': 'Название',
  'col.connector': 'Коннектор',
  'col.operation': 'Операция',
  'col.bucket': 'Период',
  'col.active_subscriptions': 'Подписки',
  'col.operations': 'Операции',
  'col.errors': 'Ошибки',
  'col.error_rate': 'Доля ошибок',
  'col.unique_users': 'Пользователи',
  'col.avg_ms': 'Среднее время, мс',
  'col.p95_ms': 'p95, мс',
  'col.share': 'Доля',
  'col.error_type': 'Тип ошибки',
  'col.count': 'Количество',
  'col.last_message': 'Последнее сообщение',
  'col.active_users': 'Активные',
  'col.new_users': 'Новые',
  'col.accounts': 'Аккаунты',
  'col.account': 'Аккаунт Make',
  'col.customer': 'Клиент',
  'col.currency': 'Валюта',
  'col.revenue': 'Доход',
  'col.payments': 'Платежи',
  'col.reason': 'Причина',
  'col.amount': 'Сумма',
  'col.status': 'Статус',
  'col.severity': 'Важность',
  'col.title': 'Заголовок',
  'col.created': 'Создан',
  'col.at': 'Время',
  'col.kind': 'Событие',
  'col.actor': 'Кто',
  'col.channel': 'Канал',
  'col.person': 'Кому',
  'col.result': 'Результат',
  'col.detail': 'Подробности',
  'col.alertname': 'Алерт',
  'col.source': 'Источник',
  'col.destination': 'Адрес',
  'col.schedule': 'Расписание',
  'col.on_call': 'Дежурит',
  'col.start': 'Начало',
  'col.end': 'Конец',
  'col.layer': 'Слой',
  'col.connectors': 'Коннекторы',
  'col.message': 'Сообщение',
  'col.created_by': 'Автор',
  'col.noticed': 'Уведомления',
  'col.user': 'Пользователь',
  'col.role': 'Роль',
  'col.method': 'Метод',
  'col.endpoint': 'Адрес API',
  'col.params': 'Параметры',
  'col.ip': 'IP',
  'col.allowed': 'Разрешено',
  'col.matchers': 'Условия',
  'col.state': 'Состояние',
  'col.comment': 'Комментарий',
  'col.body': 'Текст',
  'empty': 'Нет данных за период.',
  'connectors.title': 'Коннекторы',
  'connector.title': 'Коннектор {id}',
  'connector.back': '← Все коннекторы',
  'connector.operations_by_operation': 'Операции по видам',
  'connector.errors_by_type': 'Ошибки по типам',
  'connector.series': 'Операции по периодам',
  'connector.incidents': 'Открытые инциденты',
  'connector.incidents.none': 'Открытых инцидентов нет.',
  'users.title': 'Пользователи',
  'users.active': 'Активные пользователи',
  'users.new': 'Новые пользователи',
  'users.trial_conversion': 'Конверсия из пробного периода',
  'users.trial_detail': '{converted} из {trials}',
  'users.churn': 'Отток',
  'users.churn_detail': 'отменили {cancelled} из {base}',
  'users.series': 'Активные и новые пользователи',
  'users.distribution': 'Распределение по активности (операций за период)',
  'users.top': 'Самые активные аккаунты',
  'financial.title': 'Финансы',
  'financial.revenue': 'Доход',
  'financial.arpu': 'ARPU',
  'financial.ltv': 'LTV',
  'financial.ltv.none': 'не определено (оттока не было)',
  'financial.paying_customers': 'Платящие клиенты',
  'financial.failed_count': 'Неудачные платежи',
  'financial.failed_amount': 'Сумма неудачных платежей',
  'financial.failed_ratio': 'Доля неудачных',
  'financial.series': 'Доход по периодам',
  'financial.by_connector': 'Доход по коннекторам',
  'financial.failed_by_reason': 'Неудачные платежи по причинам',
  'reason.insufficient_funds': 'недостаточно средств',
  'reason.card_declined': 'карта отклонена',
  'reason.expired_card': 'срок карты истёк',
  'reason.fraud_suspected': 'подозрение на мошенничество',
  'reason.processing_error': 'ошибка обработки',
  'reason.other': 'другое',
  'errors.title': 'Ошибки',
  'errors.total': 'Всего ошибок',
  'errors.rate': 'Доля ошибок',
  'errors.previous': 'В предыдущем периоде',
  'errors.change': 'Изменение',
  'errors.series': 'Ошибки по периодам (тренд)',
  'errors.by_connector': 'По коннекторам',
  'errors.by_type': 'По типам',
  'errors.frequent': 'Самые частые ошибки',
  'incidents.title': 'Инциденты',
  'incidents.status': 'Статус',
  'incidents.status.any': 'все',
  'incidents.more': 'Показать ещё',
  'incidents.none': 'Инцидентов нет.',
  'status.triggered': 'открыт',
  'status.acknowledged': 'принят',
  'status.resolved': 'решён',
  'incident.title': 'Инцидент #{id}',
  'incident.back': '← Все инциденты',
  'incident.ack': 'Принять',
  'incident.resolve': 'Решить',
  'incident.escalate': 'Эскалировать сейчас',
  'incident.report': 'Скачать отчёт (Markdown)',
  'incident.note': 'Заметка',
  'incident.note.add': 'Добавить заметку',
  'incident.done': 'Готово: статус «{status}».',
  'incident.muted': 'заглушён (работы)',
  'incident.summary': 'Сводка',
  'incident.alerts': 'Алерты',
  'incident.paged': 'Кому отправлены вызовы',
  'incident.timeline': 'Хронология',
  'incident.policy': 'Политика эскалации',
  'incident.acknowledged': 'Принят',
  'incident.resolved': 'Решён',
  'incident.next_escalation': 'Следующая эскалация',
  'incident.tta': 'Время до принятия',
  'incident.ttr': 'Время до решения',
  'incident.labels': 'Метки',
  'oncall.title': 'Дежурства',
  'oncall.now': 'Сейчас на дежурстве',
  'oncall.nobody': 'никто',
  'oncall.override': 'замена',
  'oncall.shifts': 'Смены на ближайшие 14 дней: {name}',
  'oncall.shifts.cut': 'Показаны первые {n} смен.',
  'oncall.overrides': 'Замены',
  'oncall.policies': 'Политики эскалации API не отдаёт: они задаются в конфигурации bpmc-receiver.',
  'maintenance.title': 'Плановые работы',
  'maintenance.windows': 'Окна работ (закончившиеся не более 7 дней назад и будущие)',
  'maintenance.none': 'Окон работ нет.',
  'maintenance.create': 'Запланировать работы',
  'maintenance.connectors': 'Коннекторы (через запятую)',
  'maintenance.starts': 'Начало (местное время)',
  'maintenance.ends': 'Конец (местное время)',
  'maintenance.message': 'Сообщение клиентам',
  'maintenance.submit': 'Запланировать',
  'maintenance.created': 'Окно работ #{id} создано.',
  'maintenance.advance': 'заранее',
  'maintenance.ended': 'по окончании',
  'maintenance.notices': 'Отправленные уведомления о работах',
  'maintenance.silences': 'Тишина (silences)',
  'audit.title': 'Журнал аудита',
  'audit.user': 'Пользователь',
  'audit.endpoint': 'Адрес API содержит',
  'audit.from': 'С (местное время)',
  'audit.to': 'До (местное время)',
  'audit.limit': 'Сколько записей',
  'my.title': 'Мои данные',
  'my.usage': 'Использование по коннекторам',
  'my.operations': 'Использование по операциям',
  'my.errors': 'Мои ошибки',
  'my.status': 'Статус сервиса и уведомления',
  'my.status.hint': 'Плановые работы и проблемы коннекторов, на которые вы подписаны.',
  'my.notices.none': 'Уведомлений нет.',
  'my.state.operational': 'работает',
  'my.state.problem': 'проблема',
  'my.state.maintenance': 'плановые работы',
  'my.col.problem_since': 'Проблема с',
  'my.col.maintenance': 'Плановые работы',
  'yes': 'да',
  'no': 'нет',
  'none': '—',
};

const en = {
  'app.title': 'BPM Centr console',
  'app.skip': 'Skip to content',
  'app.language': 'Language',
  'app.logout': 'Log out',
  'app.loading': 'Loading…',
  'app.user': 'User {name} ({role})',
  'app.nav': 'Sections',
  'role.admin': 'administrator',
  'role.manager': 'manager',
  'role.support': 'support',
  'role.user': 'customer',
  'nav.overview': 'Overview',
  'nav.connectors': 'Connectors',
  'nav.users': 'Users',
  'nav.financial': 'Financial',
  'nav.errors': 'Errors',
  'nav.incidents': 'Incidents',
  'nav.oncall': 'On call',
  'nav.maintenance': 'Maintenance',
  'nav.audit': 'Audit',
  'nav.my': 'My account',
  'login.title': 'Log in',
  'login.name': 'User name',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.wait': 'Too many attempts. Try again in {seconds} s.',
  'error.network': 'The server cannot be reached. Check the connection and retry.',
  'error.status': 'Error {status}',
  'error.field': 'Field: {field}',
  'error.retry': 'Retry in {seconds} s.',
  'error.forbidden': 'Your role may not open this page.',
  'error.notfound': 'Page not found.',
  'filter.title': 'Filters',
  'filter.from': 'From',
  'filter.to': 'To (exclusive)',
  'filter.granularity': 'Granularity',
  'filter.connector': 'Connector',
  'filter.connector.any': 'all connectors',
  'filter.customer': 'Customer',
  'filter.customer.hint': 'A customer id (owner of API keys); empty for all customers',
  'filter.reason': 'Access reason',
  'filter.reason.hint': 'A ticket number: support must give one to see a customer',
  'filter.apply': 'Show',
  'gran.hour': 'hour',
  'gran.day': 'day',
  'gran.week': 'week',
  'gran.month': 'month',
  'export.title': 'Export',
  'export.csv': 'CSV',
  'export.xlsx': 'XLSX',
  'export.pdf': 'PDF',
  'export.label': 'Download {format}: {what}',
  'export.support': 'To download a customer\'s data, give the access reason and press Show.',
  'period.line': 'Period: {from} — {to} (reporting time zone {tz}); data as of {asof}. Times are shown in {local}.',
  'period.customer': 'Customer: {customer}',
  'overview.title': 'Platform overview',
  'overview.active_users': 'Active users',
  'overview.active_subscriptions': 'Active subscriptions',
  'overview.operations': 'Operations',
  'overview.error_rate': 'Error rate',
  'overview.revenue': 'Revenue',
  'overview.revenue.hidden': 'not available',
  'overview.series': 'Operations and errors by period',
  'overview.connectors': 'By connector',
  'col.id': 'ID',
  'col.name': 'Name',
  'col.connector': 'Connector',
  'col.operation': 'Operation',
  'col.bucket': 'Period',
  'col.active_subscriptions': 'Subscriptions',
  'col.operations': 'Operations',
  'col.errors': 'Errors',
  'col.error_rate': 'Error rate',
  'col.unique_users': 'Users',
  'col.avg_ms': 'Average, ms',
  'col.p95_ms': 'p95, ms',
  'col.share': 'Share',
  'col.error_type': 'Error type',
  'col.count': 'Count',
  'col.last_message': 'Last message',
  'col.active_users': 'Active',
  'col.new_users': 'New',
  'col.accounts': 'Accounts',
  'col.account': 'Make account',
  'col.customer': 'Customer',
  'col.currency': 'Currency',
  'col.revenue': 'Revenue',
  'col.payments': 'Payments',
  'col.reason': 'Reason',
  'col.amount': 'Amount',
  'col.status': 'Status',
  'col.severity': 'Severity',
  'col.title': 'Title',
  'col.created': 'Created',
  'col.at': 'Time',
  'col.kind': 'Event',
  'col.actor': 'By',
  'col.channel': 'Channel',
  'col.person': 'To',
  'col.result': 'Result',
  'col.detail': 'Detail',
  'col.alertname': 'Alert',
  'col.source': 'Source',
  'col.destination': 'Destination',
  'col.schedule': 'Schedule',
  'col.on_call': 'On call',
  'col.start': 'Start',
  'col.end': 'End',
  'col.layer': 'Layer',
  'col.connectors': 'Connectors',
  'col.message': 'Message',
  'col.created_by': 'Created by',
  'col.noticed': 'Notices',
  'col.user': 'User',
  'col.role': 'Role',
  'col.method': 'Method',
  'col.endpoint': 'Endpoint',
  'col.params': 'Parameters',
  'col.ip': 'IP',
  'col.allowed': 'Allowed',
  'col.matchers': 'Matchers',
  'col.state': 'State',
  'col.comment': 'Comment',
  'col.body': 'Text',
  'empty': 'No data for the period.',
  'connectors.title': 'Connectors',
  'connector.title': 'Connector {id}',
  'connector.back': '← All connectors',
  'connector.operations_by_operation': 'Operations by operation',
  'connector.errors_by_type': 'Errors by type',
  'connector.series': 'Operations by period',
  'connector.incidents': 'Open incidents',
  'connector.incidents.none': 'No open incidents.',
  'users.title': 'Users',
  'users.active': 'Active users',
  'users.new': 'New users',
  'users.trial_conversion': 'Trial conversion',
  'users.trial_detail': '{converted} of {trials}',
  'users.churn': 'Churn',
  'users.churn_detail': '{cancelled} of {base} cancelled',
  'users.series': 'Active and new users',
  'users.distribution': 'Activity distribution (operations in the period)',
  'users.top': 'Most active accounts',
  'financial.title': 'Financial',
  'financial.revenue': 'Revenue',
  'financial.arpu': 'ARPU',
  'financial.ltv': 'LTV',
  'financial.ltv.none': 'undefined (nobody churned)',
  'financial.paying_customers': 'Paying customers',
  'financial.failed_count': 'Failed payments',
  'financial.failed_amount': 'Failed amount',
  'financial.failed_ratio': 'Failed share',
  'financial.series': 'Revenue by period',
  'financial.by_connector': 'Revenue by connector',
  'financial.failed_by_reason': 'Failed payments by reason',
  'reason.insufficient_funds': 'insufficient funds',
  'reason.card_declined': 'card declined',
  'reason.expired_card': 'expired card',
  'reason.fraud_suspected': 'fraud suspected',
  'reason.processing_error': 'processing error',
  'reason.other': 'other',
  'errors.title': 'Errors',
  'errors.total': 'Errors',
  'errors.rate': 'Error rate',
  'errors.previous': 'Previous period',
  'errors.change': 'Change',
  'errors.series': 'Errors by period (trend)',
  'errors.by_connector': 'By connector',
  'errors.by_type': 'By type',
  'errors.frequent': 'Most frequent errors',
  'incidents.title': 'Incidents',
  'incidents.status': 'Status',
  'incidents.status.any': 'any',
  'incidents.more': 'Show more',
  'incidents.none': 'No incidents.',
  'status.triggered': 'triggered',
  'status.acknowledged': 'acknowledged',
  'status.resolved': 'resolved',
  'incident.title': 'Incident #{id}',
  'incident.back': '← All incidents',
  'incident.ack': 'Acknowledge',
  'incident.resolve': 'Resolve',
  'incident.escalate': 'Escalate now',
  'incident.report': 'Download report (Markdown)',
  'incident.note': 'Note',
  'incident.note.add': 'Add note',
  'incident.done': 'Done: status "{status}".',
  'incident.muted': 'muted (maintenance)',
  'incident.summary': 'Summary',
  'incident.alerts': 'Alerts',
  'incident.paged': 'Paged',
  'incident.timeline': 'Timeline',
  'incident.policy': 'Escalation policy',
  'incident.acknowledged': 'Acknowledged',
  'incident.resolved': 'Resolved',
  'incident.next_escalation': 'Next escalation',
  'incident.tta': 'Time to acknowledge',
  'incident.ttr': 'Time to resolve',
  'incident.labels': 'Labels',
  'oncall.title': 'On call',
  'oncall.now': 'On call now',
  'oncall.nobody': 'nobody',
  'oncall.override': 'override',
  'oncall.shifts': 'Shifts in the next 14 days: {name}',
  'oncall.shifts.cut': 'The first {n} shifts are shown.',
  'oncall.overrides': 'Overrides',
  'oncall.policies': 'The API does not expose escalation policies: they live in the bpmc-receiver configuration.',
  'maintenance.title': 'Maintenance',
  'maintenance.windows': 'Windows (ended less than 7 days ago, or later)',
  'maintenance.none': 'No maintenance windows.',
  'maintenance.create': 'Schedule maintenance',
  'maintenance.connectors': 'Connectors (comma-separated)',
  'maintenance.starts': 'Starts (local time)',
  'maintenance.ends': 'Ends (local time)',
  'maintenance.message': 'Message to customers',
  'maintenance.submit': 'Schedule',
  'maintenance.created': 'Maintenance window #{id} created.',
  'maintenance.advance': 'in advance',
  'maintenance.ended': 'at the end',
  'maintenance.notices': 'Maintenance notices sent',
  'maintenance.silences': 'Silences',
  'audit.title': 'Audit log',
  'audit.user': 'User',
  'audit.endpoint': 'Endpoint contains',
  'audit.from': 'From (local time)',
  'audit.to': 'To (local time)',
  'audit.limit': 'Records',
  'my.title': 'My account',
  'my.usage': 'Usage by connector',
  'my.operations': 'Usage by operation',
  'my.errors': 'My errors',
  'my.status': 'Service status and notices',
  'my.status.hint': 'Maintenance and problems of the connectors you subscribe to.',
  'my.notices.none': 'No notices.',
  'my.state.operational': 'operational',
  'my.state.problem': 'problem',
  'my.state.maintenance': 'maintenance',
  'my.col.problem_since': 'Problem since',
  'my.col.maintenance': 'Maintenance',
  'yes': 'yes',
  'no': 'no',
  'none': '—',
};

const dictionaries = { ru, en };
export const LANGUAGES = [
  { code: 'ru', name: 'Русский' },
  { code: 'en', name: 'English' },
];

let lang = 'ru';
try {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && dictionaries[saved]) lang = saved;
} catch (e) {
  // localStorage may be disabled: keep the default.
}

export function getLang() {
  return lang;
}

export function setLang(code) {
  if (!dictionaries[code]) return;
  lang = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch (e) {
    // Not remembered; still switched for this page.
  }
  document.documentElement.lang = code;
  document.title = t('app.title');
}

// t('key', {name: 'x'}) with {name} placeholders; an unknown key shows itself.
export function t(key, params) {
  const s = dictionaries[lang][key] ?? ru[key] ?? key;
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
}

export function locale() {
  return lang === 'ru' ? 'ru-RU' : 'en-US';
}

const NONE = '—';
const cache = new Map();
function nf(key, options) {
  const k = `${locale()}|${key}`;
  if (!cache.has(k)) cache.set(k, new Intl.NumberFormat(locale(), options));
  return cache.get(k);
}

export function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return NONE;
  return nf(`n${digits}`, { maximumFractionDigits: digits }).format(v);
}

export function fmtPct(v) {
  if (v === null || v === undefined) return NONE;
  return nf('pct', { style: 'percent', maximumFractionDigits: 2 }).format(v);
}

export function fmtMoney(v, currency) {
  if (v === null || v === undefined) return NONE;
  const cur = currency || 'RUB';
  try {
    return nf(`m${cur}`, { style: 'currency', currency: cur }).format(v);
  } catch (e) {
    return `${fmtNum(v, 2)} ${cur}`;
  }
}

export function fmtMinor(minor, currency) {
  if (minor === null || minor === undefined) return NONE;
  return fmtMoney(minor / 100, currency);
}

// An RFC 3339 instant in the browser's time zone.
export function fmtDateTime(s) {
  if (!s) return NONE;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

// A civil date "YYYY-MM-DD" (a bucket of the reporting time zone): shown as it is, no shift.
export function fmtCivilDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  if (!m) return fmtDateTime(s);
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeZone: 'UTC' }).format(d);
}

// A bucket key of the analytics answers: a civil date (day, week, month) or a UTC instant (hour).
export function fmtBucket(s) {
  return /^\d{4}-\d{2}-\d{2}$/.test(s || '') ? fmtCivilDate(s) : fmtDateTime(s);
}

export function fmtSeconds(v) {
  if (v === null || v === undefined) return NONE;
  const s = Math.round(v);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const parts = [];
  if (d) parts.push(`${d} ${lang === 'ru' ? 'д' : 'd'}`);
  if (d || hh) parts.push(`${hh} ${lang === 'ru' ? 'ч' : 'h'}`);
  if (d || hh || mm) parts.push(`${mm} ${lang === 'ru' ? 'мин' : 'min'}`);
  parts.push(`${s % 60} ${lang === 'ru' ? 'с' : 's'}`);
  return parts.join(' ');
}

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  } catch (e) {
    return 'local';
  }
}
