// The customer's own view (role user): the server holds every analytics query
// to the user's customer; notices come from the receiver's per-customer feed.
import { h, clear } from '../dom.js';
import { t, fmtNum, fmtPct, fmtDateTime } from '../i18n.js';
import { api, query } from '../api.js';
import { section, table, figure, figures } from '../ui.js';
import { analyticsPage, fetchAnalytics } from '../analytics.js';
import { overviewFigures, overviewConnectorsTable, frequentErrorsTable } from './analytics_pages.js';
import { noticesTable } from './ops.js';

function failed(box, e) {
  clear(box).append(h('p', { class: 'alert error' }, e.message));
}

export function my(ctx) {
  return analyticsPage(ctx, {
    endpoint: 'overview',
    title: t('my.title'),
    customerFilter: false,
    render(d, out, f) {
      const usage = h('div');
      const errors = h('div');
      const notices = h('div');
      const status = h('div');
      out.append(
        overviewFigures(d, 'my'),
        section(t('my.usage'), overviewConnectorsTable('my-connectors', d.connectors, false)),
        section(t('my.operations'), usage),
        section(t('my.errors'), errors),
        section(t('my.status'), h('p', { class: 'hint' }, t('my.status.hint')), status, notices),
      );
      fetchAnalytics('connectors', f)
        .then((c) => {
          if (!ctx.current()) return;
          const rows = [];
          for (const con of c.connectors || []) for (const op of con.operations || []) rows.push({ connector: con.id, ...op });
          usage.append(
            table(
              'my-operations',
              [
                { key: 'connector', label: t('col.connector') },
                { key: 'operation', label: t('col.operation') },
                { key: 'operations_total', label: t('col.operations'), fmt: (v) => fmtNum(v), num: true },
                { key: 'error_count', label: t('col.errors'), fmt: (v) => fmtNum(v), num: true },
                { key: 'error_rate', label: t('col.error_rate'), fmt: fmtPct, num: true },
                { key: 'avg_response_time_ms', label: t('col.avg_ms'), fmt: (v) => fmtNum(v, 1), num: true },
              ],
              rows,
              (r) => `${r.connector}|${r.operation}`,
            ),
          );
        })
        .catch((e) => failed(usage, e));
      fetchAnalytics('errors', f)
        .then((e) => {
          if (!ctx.current()) return;
          errors.append(
            figures(
              figure('my-errors-total', t('errors.total'), e.errors_total, fmtNum(e.errors_total)),
              figure('my-errors-rate', t('errors.rate'), e.error_rate, fmtPct(e.error_rate)),
            ),
            frequentErrorsTable('my-errors', e.most_frequent_errors),
          );
        })
        .catch((e) => failed(errors, e));
      // The connectors this customer subscribes to: open incidents and maintenance.
      api('/receiver/api/v1/notices/status')
        .then((st) => {
          if (!ctx.current()) return;
          status.append(
            table(
              'my-status',
              [
                { key: 'name', label: t('col.connector') },
                { key: 'status', label: t('col.status'), fmt: (v) => t(`my.state.${v}`) },
                {
                  key: 'incidents',
                  label: t('my.col.problem_since'),
                  value: (r) => (r.incidents.length ? r.incidents[0].since : null),
                  fmt: (v) => (v ? fmtDateTime(v) : t('none')),
                },
                {
                  key: 'maintenance',
                  label: t('my.col.maintenance'),
                  value: (r) => (r.maintenance.length ? r.maintenance[0].starts_at : null),
                  fmt: (v, r) =>
                    v
                      ? `${fmtDateTime(r.maintenance[0].starts_at)} — ${fmtDateTime(r.maintenance[0].ends_at)}: ${r.maintenance[0].message}`
                      : t('none'),
                },
              ],
              st.connectors || [],
              (r) => r.id,
            ),
          );
        })
        .catch((e) => (e.status === 404 ? status.append(h('p', { class: 'hint' }, t('maintenance.off'))) : failed(status, e)));
      api(`/receiver/api/v1/notices${query({ limit: 50 })}`)
        .then((n) => {
          if (!ctx.current()) return;
          const rows = n.notices || [];
          notices.append(rows.length ? noticesTable('my-notices', rows, false) : h('p', { class: 'empty', 'data-testid': 'empty-my-notices' }, t('my.notices.none')));
        })
        .catch((e) => failed(notices, e));
    },
  });
}
