// Incidents, one incident, on call, maintenance and audit pages (bpmc-receiver's
// APIs under /receiver, and the exporter's audit log).
import { h, clear, field, append } from '../dom.js';
import { t, fmtDateTime, fmtSeconds } from '../i18n.js';
import { api, query, session } from '../api.js';
import { section, table, showError, showNotice, loading, figure, figures } from '../ui.js';
import { incidentsTable } from './analytics_pages.js';

const R = '/receiver/api/v1';
const canAct = () => ['admin', 'support'].includes(session.user && session.user.role);

function title(ctx, text) {
  clear(ctx.main).append(h('h1', { tabindex: '-1' }, text));
}

export async function incidents(ctx) {
  title(ctx, t('incidents.title'));
  const status = ctx.query.get('status') || '';
  const select = h(
    'select',
    { name: 'status' },
    ['', 'triggered', 'acknowledged', 'resolved'].map((s) => h('option', { value: s, selected: s === status }, s ? t(`status.${s}`) : t('incidents.status.any'))),
  );
  const form = h(
    'form',
    {
      class: 'filters',
      'aria-label': t('filter.title'),
      onsubmit: (e) => {
        e.preventDefault();
        ctx.navigate(`#/incidents${query({ status: select.value })}`, true);
      },
    },
    field(t('incidents.status'), select),
    h('div', { class: 'field submit' }, h('button', { type: 'submit', 'data-testid': 'filters-apply' }, t('filter.apply'))),
  );
  const out = h('div');
  const more = h('div');
  ctx.main.append(form, out, more);
  loading(out);
  const all = [];
  const load = async (before) => {
    try {
      const d = await api(`${R}/incidents${query({ status, limit: 50, before })}`);
      if (!ctx.current()) return;
      all.push(...(d.incidents || []));
      clear(out).append(all.length ? incidentsTable('incidents', all) : h('p', { class: 'empty', 'data-testid': 'empty-incidents' }, t('incidents.none')));
      clear(more);
      if ((d.incidents || []).length === 50) {
        const last = all[all.length - 1].id;
        more.append(h('button', { type: 'button', 'data-testid': 'incidents-more', onclick: () => load(last) }, t('incidents.more')));
      }
    } catch (e) {
      if (ctx.current()) {
        clear(out);
        showError(e);
      }
    }
  };
  await load(undefined);
}

function dl(rows) {
  return h(
    'dl',
    { class: 'props' },
    rows.filter(Boolean).map(([label, testid, raw, text]) => h('div', {}, h('dt', {}, label), h('dd', { 'data-testid': testid, 'data-value': raw === null || raw === undefined ? 'null' : String(raw) }, text))),
  );
}

// The targets of "reassign": every schedule (GET /oncall) and every person the
// schedules and escalation policies name (GET /oncall/policies), by name.
async function reassignTargets() {
  const [oc, policies] = await Promise.all([api(`${R}/oncall`), api(`${R}/oncall/policies`)]);
  const out = [];
  const people = new Map();
  for (const s of oc.schedules || []) {
    out.push({ body: { schedule: s.id }, label: `${t('oncall.target.schedule')} ${s.name}` });
    if (s.on_call && s.on_call.person) people.set(s.on_call.person.id, s.on_call.person.name);
  }
  for (const p of policies.policies || policies || [])
    for (const l of p.levels || []) for (const x of l.targets || []) if (x.type === 'person') people.set(x.id, x.name);
  for (const [pid, name] of [...people.entries()].sort((a, b) => a[1].localeCompare(b[1])))
    out.push({ body: { person: pid }, label: `${t('oncall.target.person')} ${name}` });
  return out;
}

export async function incident(ctx, id) {
  title(ctx, t('incident.title', { id }));
  const out = h('div');
  ctx.main.append(h('p', {}, h('a', { href: '#/incidents' }, t('incident.back'))), out);
  loading(out);
  let d;
  try {
    d = await api(`${R}/incidents/${encodeURIComponent(id)}`);
  } catch (e) {
    if (ctx.current()) {
      clear(out);
      showError(e);
    }
    return;
  }
  if (!ctx.current()) return;
  clear(out);
  const act = async (action, body) => {
    try {
      const r = await api(`${R}/incidents/${encodeURIComponent(id)}/${action}`, { method: 'POST', body });
      await ctx.rerender();
      showNotice(t('incident.done', { status: r && r.incident_status ? t(`status.${r.incident_status}`) || r.incident_status : 'ok' }));
    } catch (e) {
      showError(e);
    }
  };
  const actions = h('div', { class: 'actions' });
  if (canAct()) {
    if (d.status === 'triggered') actions.append(h('button', { type: 'button', 'data-testid': 'incident-ack', onclick: () => act('ack') }, t('incident.ack')));
    if (d.status !== 'resolved') {
      actions.append(h('button', { type: 'button', 'data-testid': 'incident-resolve', onclick: () => act('resolve') }, t('incident.resolve')));
      if (d.escalation_policy) actions.append(h('button', { type: 'button', 'data-testid': 'incident-escalate', onclick: () => act('escalate') }, t('incident.escalate')));
    }
    if (d.status === 'acknowledged') {
      const duration = h('select', { name: 'duration', 'data-testid': 'incident-snooze-duration', 'aria-label': t('incident.snooze.duration') }, ['15m', '30m', '1h', '2h', '4h'].map((v) => h('option', { value: v, selected: v === '30m' }, v)));
      actions.append(duration, h('button', { type: 'button', 'data-testid': 'incident-snooze', onclick: () => act('snooze', { duration: duration.value }) }, t('incident.snooze')));
    }
    if (d.status !== 'resolved') {
      // Whom to reassign to: the schedules and the people the on-call config names.
      const target = h('select', { name: 'target', 'data-testid': 'incident-reassign-target', 'aria-label': t('incident.reassign.target') });
      const button = h('button', { type: 'button', 'data-testid': 'incident-reassign', disabled: true, onclick: () => target.value && act('reassign', JSON.parse(target.value)) }, t('incident.reassign'));
      actions.append(target, button);
      reassignTargets().then((options) => {
        for (const o of options) target.append(h('option', { value: JSON.stringify(o.body) }, o.label));
        button.disabled = !options.length;
      }, () => {});
    }
  }
  actions.append(
    h('a', { class: 'button', href: `${R}/incidents/${encodeURIComponent(id)}/report`, download: `incident-${id}.md`, 'data-testid': 'incident-report' }, t('incident.report')),
  );
  const labels = Object.entries(d.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  out.append(
    h('p', { class: 'subtitle', 'data-testid': 'incident-title' }, d.title),
    figures(
      figure('incident-status', t('col.status'), d.status, t(`status.${d.status}`) + (d.muted ? ` · ${t('incident.muted')}` : '')),
      figure('incident-severity', t('col.severity'), d.severity, d.severity),
      figure('incident-connector', t('col.connector'), d.connector, d.connector || t('none')),
    ),
    actions,
    section(
      t('incident.summary'),
      dl([
        [t('col.created'), 'incident-created', d.created_at, fmtDateTime(d.created_at)],
        [t('incident.policy'), 'incident-policy', d.escalation_policy, d.escalation_policy || t('none')],
        [t('incident.acknowledged'), 'incident-acknowledged', d.acknowledged_at, d.acknowledged_at ? `${fmtDateTime(d.acknowledged_at)} (${d.acknowledged_by || ''})` : t('none')],
        [t('incident.resolved'), 'incident-resolved', d.resolved_at, d.resolved_at ? `${fmtDateTime(d.resolved_at)} (${d.resolved_by || ''})` : t('none')],
        [t('incident.next_escalation'), 'incident-next-escalation', d.next_escalation_at, fmtDateTime(d.next_escalation_at)],
        d.snoozed_until && [t('incident.snoozed'), 'incident-snoozed', d.snoozed_until, `${fmtDateTime(d.snoozed_until)} (${d.snoozed_by || ''})`],
        [t('incident.tta'), 'incident-tta', d.time_to_acknowledge_seconds, fmtSeconds(d.time_to_acknowledge_seconds)],
        [t('incident.ttr'), 'incident-ttr', d.time_to_resolve_seconds, fmtSeconds(d.time_to_resolve_seconds)],
        [t('incident.labels'), 'incident-labels', labels, labels || t('none')],
      ]),
    ),
  );
  if (canAct()) {
    const note = h('textarea', { name: 'text', rows: 3, required: true, maxlength: 4000 });
    out.append(
      h(
        'form',
        {
          class: 'note-form',
          'data-testid': 'incident-note-form',
          onsubmit: (e) => {
            e.preventDefault();
            if (note.value.trim()) act('notes', { text: note.value });
          },
        },
        field(t('incident.note'), note),
        h('button', { type: 'submit', 'data-testid': 'incident-note-add' }, t('incident.note.add')),
      ),
    );
  }
  out.append(
    section(
      t('incident.alerts'),
      table(
        'incident-alerts',
        [
          { key: 'alertname', label: t('col.alertname') },
          { key: 'source', label: t('col.source') },
          { key: 'status', label: t('col.status') },
          { key: 'starts_at', label: t('col.start'), fmt: fmtDateTime },
        ],
        d.alerts,
      ),
    ),
    section(
      t('incident.paged'),
      table(
        'incident-paged',
        [
          { key: 'person', label: t('col.person') },
          { key: 'channel', label: t('col.channel') },
          { key: 'destination', label: t('col.destination') },
          { key: 'first_paged_at', label: t('col.at'), fmt: fmtDateTime },
        ],
        d.paged,
      ),
    ),
    section(
      t('incident.timeline'),
      table(
        'incident-timeline',
        [
          { key: 'at', label: t('col.at'), fmt: fmtDateTime },
          { key: 'kind', label: t('col.kind') },
          { key: 'actor', label: t('col.actor') },
          { key: 'channel', label: t('col.channel') },
          { key: 'person', label: t('col.person') },
          { key: 'result', label: t('col.result') },
          { key: 'detail', label: t('col.detail'), fmt: (v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : v || '') },
        ],
        d.timeline,
      ),
    ),
  );
}

// Shifts of one schedule from `now` for `days`, by asking GET /oncall?at= at each shift's end.
async function shifts(scheduleId, startIso, days, ctx) {
  const limit = Date.parse(startIso) + days * 86400000;
  const out = [];
  let at = startIso;
  for (let i = 0; i < 40 && Date.parse(at) < limit; i += 1) {
    const d = await api(`${R}/oncall${query({ schedule: scheduleId, at })}`);
    if (!ctx.current()) return { list: out, cut: false };
    const s = (d.schedules || [])[0];
    const oc = s && s.on_call;
    if (!oc) {
      // Nobody now: look again an hour later (the API gives no bounds for a gap).
      out.push({ person: null, start: at, end: null, layer_name: null, override: false });
      at = new Date(Date.parse(at) + 3600000).toISOString();
      continue;
    }
    out.push({ person: oc.person, start: oc.start || at, end: oc.end, layer_name: oc.layer_name, override: oc.override });
    if (!oc.end) break;
    at = oc.end;
  }
  // Merge consecutive gaps of nobody.
  const merged = [];
  for (const s of out) {
    const prev = merged[merged.length - 1];
    if (prev && !prev.person && !s.person) continue;
    if (prev && !prev.person) prev.end = s.start;
    merged.push({ ...s });
  }
  return { list: merged, cut: Date.parse(at) < limit && out.length >= 40 };
}

// One table per escalation policy (GET /oncall/policies): a row per level.
function policyTables(policies) {
  if (!policies.length) return [h('p', { class: 'empty', 'data-testid': 'empty-policies' }, t('oncall.policies.none'))];
  const target = (x) => `${t(`oncall.target.${x.type}`)} ${x.name}${x.name !== x.id ? ` (${x.id})` : ''}`;
  return policies.map((p) =>
    h(
      'div',
      { class: 'policy', 'data-testid': `policy-${p.id}` },
      h('h3', {}, p.name === p.id ? p.name : `${p.name} (${p.id})`),
      h(
        'p',
        { class: 'hint' },
        t('oncall.policy.rules', {
          repeat: p.repeat,
          ack: p.ack_timeout_seconds === null ? t('oncall.policy.no_timeout') : fmtSeconds(p.ack_timeout_seconds),
        }),
      ),
      table(
        `policy-${p.id}`,
        [
          { key: 'level', label: t('col.level'), fmt: (v) => String(v + 1) },
          { key: 'targets', label: t('col.targets'), fmt: (v) => v.map(target).join(', ') },
          { key: 'delay_seconds', label: t('col.next_level_after'), fmt: fmtSeconds },
        ],
        p.levels,
        (r) => r.level,
      ),
    ),
  );
}

export async function oncall(ctx) {
  title(ctx, t('oncall.title'));
  const out = h('div');
  ctx.main.append(out);
  loading(out);
  let d;
  try {
    d = await api(`${R}/oncall`);
  } catch (e) {
    if (ctx.current()) {
      clear(out);
      showError(e);
    }
    return;
  }
  if (!ctx.current()) return;
  clear(out);
  const person = (oc) => (oc ? `${oc.person.name}${oc.override ? ` (${t('oncall.override')})` : ''}` : t('oncall.nobody'));
  out.append(
    section(
      t('oncall.now'),
      table(
        'oncall',
        [
          { key: 'name', label: t('col.schedule') },
          { key: 'on_call', label: t('col.on_call'), value: (r) => (r.on_call ? r.on_call.person.id : null), fmt: (v, r) => person(r.on_call) },
          { key: 'layer_name', label: t('col.layer'), value: (r) => (r.on_call ? r.on_call.layer_name : null) },
          { key: 'start', label: t('col.start'), value: (r) => (r.on_call ? r.on_call.start : null), fmt: fmtDateTime },
          { key: 'end', label: t('col.end'), value: (r) => (r.on_call ? r.on_call.end : null), fmt: fmtDateTime },
          { key: 'time_zone', label: 'TZ' },
        ],
        d.schedules,
        (r) => r.id,
      ),
    ),
  );
  const shiftBoxes = (d.schedules || []).map((s) => {
    const box = h('div');
    out.append(section(t('oncall.shifts', { name: s.name }), box));
    return [s, box];
  });
  const overridesBox = h('div');
  const policiesBox = h('div');
  out.append(section(t('oncall.overrides'), overridesBox), section(t('oncall.policies'), policiesBox));
  loading(policiesBox);
  api(`${R}/oncall/policies`)
    .then((p) => {
      if (!ctx.current()) return;
      clear(policiesBox).append(...policyTables(p.policies || []));
    })
    .catch((e) => clear(policiesBox).append(h('p', { class: 'alert error' }, e.message)));
  api(`${R}/overrides`)
    .then((o) => {
      if (!ctx.current()) return;
      overridesBox.append(
        table(
          'oncall-overrides',
          [
            { key: 'schedule', label: t('col.schedule') },
            { key: 'person', label: t('col.person') },
            { key: 'from', label: t('col.start'), fmt: fmtDateTime },
            { key: 'to', label: t('col.end'), fmt: fmtDateTime },
            { key: 'reason', label: t('col.reason') },
          ],
          o.overrides,
          (r) => r.id,
        ),
      );
    })
    .catch((e) => overridesBox.append(h('p', { class: 'alert error' }, e.message)));
  for (const [s, box] of shiftBoxes) {
    loading(box);
    shifts(s.id, d.at || new Date().toISOString(), 14, ctx)
      .then(({ list, cut }) => {
        if (!ctx.current()) return;
        // Our append: it skips the null of "no cut" (the native one writes "null").
        append(clear(box), [
          table(
            `oncall-shifts-${s.id}`,
            [
              { key: 'person', label: t('col.on_call'), value: (r) => (r.person ? r.person.id : null), fmt: (v, r) => (r.person ? r.person.name + (r.override ? ` (${t('oncall.override')})` : '') : t('oncall.nobody')) },
              { key: 'start', label: t('col.start'), fmt: fmtDateTime },
              { key: 'end', label: t('col.end'), fmt: fmtDateTime },
              { key: 'layer_name', label: t('col.layer') },
            ],
            list,
          ),
          cut ? h('p', { class: 'hint' }, t('oncall.shifts.cut', { n: list.length })) : null,
        ]);
      })
      .catch((e) => clear(box).append(h('p', { class: 'alert error' }, e.message)));
  }
}

function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// The edit form of one window (admin): PUT /maintenance/{id} with the changed keys.
function maintenanceEditor(ctx, w) {
  const connectors = h('input', { type: 'text', name: 'connectors', required: true, autocomplete: 'off', value: (w.connectors || []).join(', ') });
  const starts = h('input', { type: 'datetime-local', name: 'starts_at', required: true, value: localInput(w.starts_at) });
  const ends = h('input', { type: 'datetime-local', name: 'ends_at', required: true, value: localInput(w.ends_at) });
  const message = h('textarea', { name: 'message', rows: 3, required: true, maxlength: 2000 });
  message.value = w.message || '';
  const original = { connectors: connectors.value, starts: starts.value, ends: ends.value, message: message.value };
  return h(
    'form',
    {
      class: 'stack',
      'data-testid': 'maintenance-edit-form',
      onsubmit: async (e) => {
        e.preventDefault();
        // Only what changed: an unchanged start in the past stays as it was, to the second.
        const body = {};
        if (connectors.value !== original.connectors) body.connectors = connectors.value.split(',').map((x) => x.trim()).filter(Boolean);
        if (starts.value !== original.starts) body.starts_at = localToIso(starts.value);
        if (ends.value !== original.ends) body.ends_at = localToIso(ends.value);
        if (message.value !== original.message) body.message = message.value;
        try {
          await api(`${R}/maintenance/${encodeURIComponent(w.id)}`, { method: 'PUT', body });
          await ctx.rerender();
          showNotice(t('maintenance.edited', { id: w.id }));
        } catch (err) {
          showError(err);
        }
      },
    },
    h('h3', {}, t('maintenance.editing', { id: w.id })),
    field(t('maintenance.connectors'), connectors),
    field(t('maintenance.starts'), starts),
    field(t('maintenance.ends'), ends),
    field(t('maintenance.message'), message),
    h('div', {}, h('button', { type: 'submit', 'data-testid': 'maintenance-save' }, t('maintenance.save'))),
  );
}

export async function maintenance(ctx) {
  title(ctx, t('maintenance.title'));
  const role = session.user.role;
  const list = h('div');
  const editor = h('div', { 'data-testid': 'maintenance-editor' });
  ctx.main.append(section(t('maintenance.windows'), list));
  if (role === 'admin') {
    const connectors = h('input', { type: 'text', name: 'connectors', required: true, autocomplete: 'off' });
    const starts = h('input', { type: 'datetime-local', name: 'starts_at', required: true });
    const ends = h('input', { type: 'datetime-local', name: 'ends_at', required: true });
    const message = h('textarea', { name: 'message', rows: 3, required: true, maxlength: 2000 });
    const form = h(
      'form',
      {
        class: 'stack',
        'data-testid': 'maintenance-form',
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const r = await api(`${R}/maintenance`, {
              method: 'POST',
              body: {
                connectors: connectors.value.split(',').map((s) => s.trim()).filter(Boolean),
                starts_at: localToIso(starts.value),
                ends_at: localToIso(ends.value),
                message: message.value,
              },
            });
            await ctx.rerender();
            showNotice(t('maintenance.created', { id: r.window ? r.window.id : '' }));
          } catch (err) {
            showError(err);
          }
        },
      },
      field(t('maintenance.connectors'), connectors),
      field(t('maintenance.starts'), starts),
      field(t('maintenance.ends'), ends),
      field(t('maintenance.message'), message),
      h('div', {}, h('button', { type: 'submit', 'data-testid': 'maintenance-submit' }, t('maintenance.submit'))),
    );
    ctx.main.append(section(t('maintenance.create'), form));
  }
  const silences = h('div');
  ctx.main.append(section(t('maintenance.silences'), silences));
  let notices = null;
  if (role === 'admin') {
    notices = h('div');
    ctx.main.append(section(t('maintenance.notices'), notices));
  }
  loading(list);
  try {
    const d = await api(`${R}/maintenance`);
    if (!ctx.current()) return;
    clear(list).append(
      table(
        'maintenance',
        [
          { key: 'id', label: t('col.id') },
          { key: 'connectors', label: t('col.connectors'), fmt: (v) => (v || []).join(', ') },
          { key: 'starts_at', label: t('col.start'), fmt: fmtDateTime },
          { key: 'ends_at', label: t('col.end'), fmt: fmtDateTime },
          { key: 'message', label: t('col.message') },
          { key: 'created_by', label: t('col.created_by') },
          {
            key: 'noticed',
            label: t('col.noticed'),
            value: (r) => ({ advance: r.advance_noticed, end: r.end_noticed }),
            fmt: (v) => `${t('maintenance.advance')}: ${v.advance ? t('yes') : t('no')}; ${t('maintenance.ended')}: ${v.end ? t('yes') : t('no')}`,
          },
          {
            key: 'state',
            label: t('col.status'),
            value: (r) => (r.cancelled ? 'cancelled' : new Date(r.ends_at) <= new Date() ? 'over' : r.revision > 0 ? 'edited' : 'scheduled'),
            fmt: (v) => t(`maintenance.state.${v}`),
          },
          ...(role === 'admin'
            ? [
                {
                  key: 'actions',
                  label: t('col.actions'),
                  value: (r) => r.id,
                  fmt: (id, r) =>
                    r.cancelled || new Date(r.ends_at) <= new Date()
                      ? '—'
                      : h(
                          'span',
                          { class: 'row-actions' },
                          h(
                            'button',
                            {
                              type: 'button',
                              'data-testid': `maintenance-edit-${id}`,
                              onclick: () => {
                                clear(editor).append(maintenanceEditor(ctx, r));
                                const first = editor.querySelector('input');
                                if (first) first.focus();
                              },
                            },
                            t('maintenance.edit'),
                          ),
                          h(
                            'button',
                            {
                              type: 'button',
                              class: 'danger',
                              'data-testid': `maintenance-cancel-${id}`,
                              onclick: async () => {
                                if (!window.confirm(t('maintenance.cancel.confirm', { id }))) return;
                                try {
                                  await api(`${R}/maintenance/${encodeURIComponent(id)}`, { method: 'DELETE' });
                                  await ctx.rerender();
                                  showNotice(t('maintenance.cancelled', { id }));
                                } catch (err) {
                                  showError(err);
                                }
                              },
                            },
                            t('maintenance.cancel'),
                          ),
                        ),
                },
              ]
            : []),
        ],
        d.windows,
        (r) => r.id,
      ),
      editor,
    );
  } catch (e) {
    if (ctx.current()) {
      clear(list);
      // 404: the receiver runs without its notices: section (docs/NOTICES.md).
      if (e.status === 404) list.append(h('p', { class: 'hint', 'data-testid': 'maintenance-off' }, t('maintenance.off')));
      else showError(e);
    }
  }
  api(`${R}/silences`)
    .then((s) => {
      if (!ctx.current()) return;
      silences.append(
        table(
          'silences',
          [
            { key: 'id', label: t('col.id') },
            { key: 'matchers', label: t('col.matchers'), fmt: (v) => (v || []).join(', ') },
            { key: 'state', label: t('col.state') },
            { key: 'starts_at', label: t('col.start'), fmt: fmtDateTime },
            { key: 'ends_at', label: t('col.end'), fmt: fmtDateTime },
            { key: 'comment', label: t('col.comment') },
            { key: 'created_by', label: t('col.created_by') },
          ],
          s.silences,
          (r) => r.id,
        ),
      );
    })
    .catch((e) => silences.append(h('p', { class: 'alert error' }, e.message)));
  if (notices) {
    api(`${R}/notices${query({ limit: 200 })}`)
      .then((n) => {
        if (!ctx.current()) return;
        const rows = (n.notices || []).filter((x) => String(x.kind).startsWith('maintenance'));
        notices.append(noticesTable('maintenance-notices', rows, true));
      })
      .catch((e) => notices.append(h('p', { class: 'alert error' }, e.message)));
  }
}

export function noticesTable(name, rows, withCustomer) {
  const cols = [
    { key: 'created_at', label: t('col.created'), fmt: fmtDateTime },
    { key: 'kind', label: t('col.kind') },
    { key: 'connectors', label: t('col.connectors'), fmt: (v) => (v || []).join(', ') },
    { key: 'title', label: t('col.title') },
    { key: 'body', label: t('col.body') },
  ];
  if (withCustomer) cols.splice(1, 0, { key: 'customer_id', label: t('col.customer') });
  return table(name, cols, rows, (r) => r.id);
}

function localInput(iso) {
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export async function audit(ctx) {
  title(ctx, t('audit.title'));
  const q = ctx.query;
  const user = h('input', { type: 'text', name: 'user', value: q.get('user') || '', autocomplete: 'off' });
  const endpoint = h('input', { type: 'text', name: 'endpoint', value: q.get('endpoint') || '', autocomplete: 'off' });
  const from = h('input', { type: 'datetime-local', name: 'from', value: q.get('from') ? localInput(q.get('from')) : '' });
  const to = h('input', { type: 'datetime-local', name: 'to', value: q.get('to') ? localInput(q.get('to')) : '' });
  const limit = h('input', { type: 'number', name: 'limit', min: 1, max: 1000, value: q.get('limit') || '100' });
  const form = h(
    'form',
    {
      class: 'filters',
      'aria-label': t('filter.title'),
      onsubmit: (e) => {
        e.preventDefault();
        ctx.navigate(
          `#/audit${query({ user: user.value.trim(), endpoint: endpoint.value.trim(), from: localToIso(from.value), to: localToIso(to.value), limit: limit.value === '100' ? '' : limit.value })}`,
          true,
        );
      },
    },
    field(t('audit.user'), user),
    field(t('audit.endpoint'), endpoint),
    field(t('audit.from'), from),
    field(t('audit.to'), to),
    field(t('audit.limit'), limit),
    h('div', { class: 'field submit' }, h('button', { type: 'submit', 'data-testid': 'filters-apply' }, t('filter.apply'))),
  );
  const out = h('div');
  ctx.main.append(form, out);
  loading(out);
  try {
    const d = await api(`/api/v1/audit${query({ from: q.get('from'), to: q.get('to'), user: q.get('user'), endpoint: q.get('endpoint'), limit: q.get('limit') })}`);
    if (!ctx.current()) return;
    const rows = d.records || [];
    clear(out).append(
      table(
        'audit',
        [
          { key: 'at', label: t('col.at'), fmt: fmtDateTime },
          { key: 'user', label: t('col.user') },
          { key: 'role', label: t('col.role') },
          { key: 'method', label: t('col.method') },
          { key: 'endpoint', label: t('col.endpoint') },
          { key: 'params', label: t('col.params'), fmt: (v) => (v && Object.keys(v).length ? JSON.stringify(v) : '') },
          { key: 'ip', label: t('col.ip') },
          { key: 'reason', label: t('col.reason') },
          { key: 'status', label: t('col.status') },
          { key: 'allowed', label: t('col.allowed'), fmt: (v) => (v ? t('yes') : t('no')) },
        ],
        rows,
        (r) => r.id,
      ),
    );
  } catch (e) {
    if (ctx.current()) {
      clear(out);
      showError(e);
    }
  }
}
