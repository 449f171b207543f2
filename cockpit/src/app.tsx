// Port forwards: Cockpit's page for virt-hooks. It shows `virt-hooks status --json`
// (polled while the page is visible), and edits only its own drop-in file
// (60-cockpit.rules): staged copy → `virt-hooks check` and `plan` → replace with
// cockpit.file's tag (a concurrent edit is refused) → `virt-hooks apply`.
import React, { useCallback, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  ActionGroup, Alert, Button, Card, CardBody, CardTitle, CodeBlock, CodeBlockCode, DescriptionList, DescriptionListDescription,
  DescriptionListGroup, DescriptionListTerm, ExpandableSection, Form, FormGroup, FormSelect, FormSelectOption, Label, Page,
  PageSection, Spinner, Table, Tbody, Td, TextInput, Th, Thead, Title, Tr,
} from "./pf";
import "@patternfly/react-core/dist/styles/base.css";
import {
  addLine, blocking, editLine, fmtBytes, forwardLine, hostLine, OWN_FILE, parseForward, parseHost, RULES_DIR, shq, unprivileged, unstage, where,
  type Diagnostic, type Plan, type Status, type StatusRule, type HostEntry,
} from "./model";
import {
  ConflictError, jumpToMachine, locationGuest, onLocation, readOwn, replaceOwn, showGuest, stage, status as readStatus, vh, watchAccess,
  type Access, type Snapshot, type Superuser,
} from "./bridge";

const POLL_MS = 4000;

const stateColor: Record<string, "green" | "orange" | "red" | "grey" | "blue"> = {
  live: "green", waiting: "grey", pending: "blue", drifted: "orange", failed: "red",
};
const StateLabel = ({ s }: { s: string }) => <Label color={stateColor[s] ?? "grey"} className={`vh-state vh-state-${s}`}>{s}</Label>;

const Cmd = ({ lines, id }: { lines: string[]; id?: string }) => (
  <CodeBlock id={id} className="vh-cmd"><CodeBlockCode>{lines.join("\n")}</CodeBlockCode></CodeBlock>
);

type Edit =
  | { kind: "forward"; line?: number; text?: string; snap: Snapshot }
  | { kind: "host"; line?: number; text?: string; snap: Snapshot };

interface Staged { content: string; snap: Snapshot; what: string; diags: Diagnostic[]; block: Diagnostic[]; plan: Plan; dir: string }

function App() {
  const [raw, setSt] = useState<Status | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [access, setAccess] = useState<Access>({ allowed: null, configured: null, methods: [] });
  const su = useRef<Superuser | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [cmd, setCmd] = useState<string[]>(["sudo virt-hooks status --json"]);
  const [result, setResult] = useState<{ variant: "success" | "danger" | "info"; title: string; body?: string } | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);
  const [staged, setStaged] = useState<Staged | null>(null);
  const [formErr, setFormErr] = useState<string | null>(null);
  const [loadedAt, setLoadedAt] = useState<number | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const [guest, setGuest] = useState<string | null>(locationGuest());
  useEffect(() => onLocation(() => setGuest(locationGuest())), []);

  const refresh = useCallback(async () => {
    try { setSt(await readStatus()); setErr(null); setLoadedAt(Date.now()); }
    catch (e: any) { setErr(String(e?.message ?? e)); }
  }, []);

  // Poll while visible; one request at a time (the next is scheduled when one ends).
  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      if (!document.hidden) await refresh();
      if (!stopped) timer.current = window.setTimeout(tick, POLL_MS);
    };
    tick();
    const vis = () => { if (!document.hidden) { window.clearTimeout(timer.current); tick(); } };
    document.addEventListener("visibilitychange", vis);
    su.current = watchAccess(setAccess);
    return () => { stopped = true; window.clearTimeout(timer.current); document.removeEventListener("visibilitychange", vis); };
  }, [refresh]);

  // As Cockpit's own pages do: actions that need administrative access are off unless it is on.
  const ro = access.allowed !== true;
  // Without it, status cannot see the firewall, libvirt or the watcher: show rules.d alone, states unknown.
  const blind = access.allowed === false;
  const st = raw && blind ? unprivileged(raw) : raw;
  // Administrative access turned on or off: status as the new user at once.
  const allowedSeen = useRef<boolean | null>(null);
  useEffect(() => {
    if (allowedSeen.current !== null && access.allowed !== null && access.allowed !== allowedSeen.current) refresh();
    if (access.allowed !== null) allowedSeen.current = access.allowed;
  }, [access.allowed, refresh]);

  const apply = async (why: string) => {
    setBusy("apply"); setCmd(["sudo virt-hooks apply"]);
    try {
      const r = await vh(["apply"]);
      setResult(r.rc === 0
        ? { variant: "success", title: `${why}: virt-hooks apply succeeded`, body: r.out }
        : { variant: "danger", title: `${why}: virt-hooks apply exited ${r.rc}`, body: r.out });
    } catch (e: any) { setResult({ variant: "danger", title: "virt-hooks apply could not run", body: String(e?.message ?? e) }); }
    setBusy(null); await refresh();
  };

  const open = async (kind: "forward" | "host", row?: { line: number; text: string }) => {
    setStaged(null); setFormErr(null); setResult(null);
    try { setEdit({ kind, ...(row ? { line: row.line, text: row.text } : {}), snap: await readOwn() }); }
    catch (e: any) { setFormErr(`could not read ${OWN_FILE}: ${e?.message ?? e}`); }
  };

  const check = async (content: string, snap: Snapshot, what: string) => {
    setBusy("check"); setFormErr(null); setStaged(null);
    const D = "$D";
    setCmd([`D=$(mktemp -d) && cp -p ${RULES_DIR}/*.rules ${D}/   # a staged copy`, `${what.startsWith("remove") ? "sed -i …" : "$EDITOR"} ${D}/60-cockpit.rules   # ${what}`,
      `sudo virt-hooks check --json --rules-dir ${D}`, `sudo virt-hooks plan --json --rules-dir ${D}`]);
    try {
      const s = await stage(content);
      const diags = s.check.diagnostics.map((d) => unstage(d, s.dir));
      setStaged({ content, snap, what, diags, block: blocking(diags), plan: s.plan, dir: s.dir });
    } catch (e: any) { setFormErr(String(e?.message ?? e)); }
    setBusy(null);
  };

  const save = async (s: Staged) => {
    setBusy("save");
    setCmd([`sudoedit ${OWN_FILE}   # ${s.what}`, "sudo virt-hooks apply"]);
    try {
      await replaceOwn(s.content, s.snap.tag);
    } catch (e: any) {
      setBusy(null); setStaged(null);
      setResult({ variant: "danger", title: e instanceof ConflictError ? "Not saved: the file changed meanwhile" : "Not saved", body: String(e?.message ?? e) });
      return;
    }
    setEdit(null); setStaged(null);
    await apply(`Saved (${s.what})`);
  };

  const remove = async (r: { line: number; text: string }) => {
    setResult(null); setEdit(null);
    try {
      const snap = await readOwn();
      await check(editLine(snap.content ?? "", r.line, r.text, null), snap, `remove line ${r.line}: ${r.text}`);
    } catch (e: any) { setResult({ variant: "danger", title: "Not removed", body: String(e?.message ?? e) }); }
  };

  const own = (f: string) => f === OWN_FILE;
  const rowActions = (r: { file: string; line: number; text: string }, kind: "forward" | "host") => own(r.file) ? (
    <>
      <Button variant="link" isInline isDisabled={ro || !!busy} onClick={() => open(kind, r)} className="vh-edit">Edit</Button>{" "}
      <Button variant="link" isInline isDanger isDisabled={ro || !!busy} onClick={() => remove(r)} className="vh-remove">Remove</Button>
    </>
  ) : <span className="vh-foreign" title="Written by hand: edit it in its file">—</span>;

  return (
    <Page>
      <PageSection variant="light">
        <Title headingLevel="h1">Port forwards <small>virt-hooks</small></Title>
        <p>Forwards, fixed addresses and NAT of libvirt's networks, from <code>{RULES_DIR}</code>. This page writes only <code>{OWN_FILE}</code>.
          {loadedAt ? <span id="vh-updated"> Updated {new Date(loadedAt).toLocaleTimeString()}.</span> : null}</p>
      </PageSection>
      <PageSection>
        {access.allowed === false && <ReadOnly configured={access.configured === true} su={su.current} />}
        {err && <Alert id="vh-error" variant="danger" isInline title="virt-hooks status failed">{err}</Alert>}
        {!st && !err && <Spinner aria-label="Loading" />}
        {st && st.drift.length > 0 && (
          <Alert id="vh-drift" variant="warning" isInline title={`Drift: the firewall differs from the rules (${st.drift.length})`}
            actionLinks={<Button id="vh-drift-apply" variant="primary" isDisabled={ro || !!busy} onClick={() => apply("Drift repaired")}>Apply</Button>}>
            <ul>{st.drift.map((d, i) => <li key={i}><b>{d.kind}</b> {d.where}: {d.detail}{d.origin ? ` (${d.origin})` : ""}</li>)}</ul>
            <p>Command line: <code>sudo virt-hooks apply</code></p>
          </Alert>
        )}
        {result && (
          <Alert id="vh-result" variant={result.variant} isInline title={result.title} actionClose={<Button variant="plain" onClick={() => setResult(null)}>×</Button>}>
            {result.body ? <pre className="vh-out">{result.body}</pre> : null}
          </Alert>
        )}
      </PageSection>
      {st && (
        <PageSection>
          <Card id="vh-summary" isCompact>
            <CardTitle>Status</CardTitle>
            <CardBody>
              <DescriptionList isHorizontal columnModifier={{ default: "2Col" }}>
                <DescriptionListGroup><DescriptionListTerm>Rules</DescriptionListTerm>
                  <DescriptionListDescription id="vh-counts">{blind ? `${st.rules.length} in rules.d (their state needs administrative access)`
                    : `${st.summary.live} live, ${st.summary.waiting} waiting, ${st.summary.drifted} drifted, ${st.summary.failed} failed`}</DescriptionListDescription></DescriptionListGroup>
                <DescriptionListGroup><DescriptionListTerm>Firewall</DescriptionListTerm>
                  <DescriptionListDescription>{st.backend ? `${st.backend.name} (${st.backend.why})` : "–"}</DescriptionListDescription></DescriptionListGroup>
                <DescriptionListGroup><DescriptionListTerm>Watcher</DescriptionListTerm>
                  <DescriptionListDescription id="vh-watcher">{blind ? "needs administrative access" : st.watcher.running
                    ? <>running (pid {st.watcher.pid}){st.watcher.sources ? `: ${Object.entries(st.watcher.sources).map(([k, v]) => `${k} ${v}`).join(", ")}` : ""}</>
                    : "not running (systemctl start virt-hooks-watch)"}</DescriptionListDescription></DescriptionListGroup>
                <DescriptionListGroup><DescriptionListTerm>Last repair</DescriptionListTerm>
                  <DescriptionListDescription id="vh-repair">{st.watcher.lastRepair
                    ? `${new Date(st.watcher.lastRepair.at).toLocaleString()}: ${st.watcher.lastRepair.why} (out ${st.watcher.lastRepair.outMs} ms, reconcile ${st.watcher.lastRepair.ms} ms)`
                    : st.watcher.running ? "none since the watcher started" : "–"}</DescriptionListDescription></DescriptionListGroup>
              </DescriptionList>
              {st.errors.length > 0 && <Alert variant="danger" isInline isPlain title="The firewall could not be read">{st.errors.join("; ")}</Alert>}
            </CardBody>
          </Card>
        </PageSection>
      )}
      {st && (
        <PageSection>
          <Card>
            <CardTitle>Rules <Button id="vh-add-forward" variant="secondary" isDisabled={ro || !!busy} onClick={() => open("forward")}>Add forward</Button>{" "}
              <Button id="vh-add-host" variant="secondary" isDisabled={ro || !!busy} onClick={() => open("host")}>Add fixed address</Button></CardTitle>
            <CardBody>
              {edit && <EditForm key={`${edit.kind}-${edit.line ?? "new"}`} edit={edit} busy={busy} formErr={formErr} staged={staged}
                onCheck={(content, what) => check(content, edit.snap, what)} onCancel={() => { setEdit(null); setStaged(null); }} onSave={save} />}
              {!edit && staged && <StagedView staged={staged} busy={busy} onSave={save} onCancel={() => setStaged(null)} />}
              {guest && (
                <Alert id="vh-filter" variant="info" isInline isPlain title={`Showing the rules of guest ${guest}`}
                  actionLinks={<><Button variant="link" isInline onClick={() => jumpToMachine(guest)}>Open {guest} in Virtual machines</Button>{" "}
                    <Button id="vh-show-all" variant="link" isInline onClick={() => showGuest(null)}>Show all</Button></>} />
              )}
              <RulesTable rules={guest ? st.rules.filter((r) => r.domain === guest) : st.rules} actions={(r) => rowActions(r, "forward")} />
            </CardBody>
          </Card>
        </PageSection>
      )}
      {st && (
        <PageSection>
          <Card>
            <CardTitle>Fixed addresses</CardTitle>
            <CardBody><HostsTable hosts={st.hosts} actions={(h) => rowActions(h, "host")} /></CardBody>
          </Card>
        </PageSection>
      )}
      {st && st.diagnostics.length > 0 && (
        <PageSection><Card><CardTitle>Diagnostics</CardTitle><CardBody><Diags diags={st.diagnostics} /></CardBody></Card></PageSection>
      )}
      <PageSection>
        <ExpandableSection toggleText="Equivalent command line" isExpanded id="vh-cmdline"><Cmd lines={cmd} /></ExpandableSection>
      </PageSection>
    </Page>
  );
}

/**
 * Without administrative access: the page is read-only and says how to gain it. In
 * Cockpit's Limited access (a method such as sudo is configured) its button starts
 * that method through Cockpit's own superuser API, as the top bar's button does.
 */
function ReadOnly({ configured, su }: { configured: boolean; su: Superuser | null }) {
  const [busy, setBusy] = useState(false);
  const [prompt, setPrompt] = useState<{ message: string; prompt: string; echo: boolean; error: string } | null>(null);
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const start = () => {
    if (!su) return;
    setBusy(true); setError(null); setPrompt(null);
    su.start((p) => { setBusy(false); setPrompt(p); setValue(""); })
      .then(() => { setPrompt(null); setBusy(false); })
      .catch((e: any) => { setPrompt(null); setBusy(false); if (e?.message !== "cancelled") setError(String(e?.message ?? e)); });
  };
  const answer = (e?: React.FormEvent) => { e?.preventDefault(); su?.answer(value); setBusy(true); setPrompt(null); };
  const cancel = () => { su?.stop(); setPrompt(null); setBusy(false); };
  return (
    <Alert id="vh-readonly" variant="info" isInline
      title={configured ? "Read-only: Limited access" : "Read-only: this user has no administrative access"}
      actionLinks={configured ? <>
        <Button id="vh-unlock" variant="primary" isLoading={busy} isDisabled={busy || !!prompt} onClick={start}>Turn on administrative access</Button>
        {busy && <Button variant="link" onClick={cancel}>Cancel</Button>}
      </> : undefined}>
      {configured ? (
        <p>Adding, editing and removing forwards and fixed addresses and applying them need administrative access. Turn it on
          with the button here or with <b>Limited access</b> in Cockpit's top bar (your own password, through sudo).
          Until then the page shows the rules as written in <code>rules.d</code>: their state, counters and the watcher
          need it too (the firewall and libvirt's guests are root's to read).</p>
      ) : (
        <p>Adding, editing and removing forwards and fixed addresses and applying them need administrative access, and this
          user cannot gain it (no sudo or pkexec). Log in to Cockpit as an administrator, or use
          <code> sudo virt-hooks status</code> and <code>rules.d</code> from a terminal as one. The page shows the rules as
          written in <code>rules.d</code>; their state, counters and the watcher need administrative access too.</p>
      )}
      {prompt && (
        <Form id="vh-unlock-form" isHorizontal onSubmit={answer}>
          {prompt.error && <Alert variant="danger" isInline isPlain title={prompt.error} />}
          {prompt.message && <p>{prompt.message}</p>}
          <FormGroup label={prompt.prompt || "Password"} fieldId="vh-unlock-password">
            <TextInput id="vh-unlock-password" type={prompt.echo ? "text" : "password"} value={value} onChange={(_e, v) => setValue(v)} />
          </FormGroup>
          <ActionGroup><Button type="submit" variant="primary">Authenticate</Button><Button variant="link" onClick={cancel}>Cancel</Button></ActionGroup>
        </Form>
      )}
      {error && <Alert id="vh-unlock-error" variant="danger" isInline isPlain title={`Administrative access was not turned on: ${error}`} />}
    </Alert>
  );
}

function RulesTable({ rules, actions }: { rules: StatusRule[]; actions: (r: StatusRule) => React.ReactNode }) {
  return (
    <Table id="vh-rules" aria-label="Rules" variant="compact">
      <Thead><Tr><Th>State</Th><Th>Statement</Th><Th>Guest</Th><Th>Target</Th><Th>Fixed address</Th><Th>Connections</Th><Th>Packets</Th><Th>Bytes</Th><Th>File:line</Th><Th screenReaderText="Actions" /></Tr></Thead>
      <Tbody>
        {rules.map((r) => (
          <Tr key={r.origin} data-origin={r.origin} data-state={r.state} className="vh-rule">
            <Td dataLabel="State"><StateLabel s={r.state} /></Td>
            <Td dataLabel="Statement"><code>{r.text}</code><div className="vh-detail">{r.detail}</div></Td>
            <Td dataLabel="Guest">{r.domain
              ? <Button variant="link" isInline className="vh-guest" title={`only ${r.domain}'s rules (a link to share: #/?guest=${r.domain})`} onClick={() => showGuest(r.domain)}>{r.domain}</Button>
              : "–"}</Td>
            <Td dataLabel="Target">{r.targets.join(", ") || "–"}</Td>
            <Td dataLabel="Fixed address">{r.mac ? `${r.mac} (${r.network})` : "–"}{r.lease ? <div>lease {r.lease.ip}{r.lease.differs ? " (differs!)" : ""}</div> : null}</Td>
            <Td dataLabel="Connections" className="vh-conn">{r.counters?.connections ?? "–"}</Td>
            <Td dataLabel="Packets" className="vh-pkts">{r.counters?.packets ?? "–"}</Td>
            <Td dataLabel="Bytes" className="vh-bytes">{fmtBytes(r.counters?.bytes ?? null)}</Td>
            <Td dataLabel="File:line"><code>{r.origin}</code></Td>
            <Td dataLabel="Actions">{actions(r)}</Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

function HostsTable({ hosts, actions }: { hosts: HostEntry[]; actions: (h: HostEntry) => React.ReactNode }) {
  if (!hosts.length) return <p>No <code>host</code> statements.</p>;
  return (
    <Table id="vh-hosts" aria-label="Fixed addresses" variant="compact">
      <Thead><Tr><Th>State</Th><Th>Network</Th><Th>MAC</Th><Th>Address</Th><Th>Name</Th><Th>File:line</Th><Th screenReaderText="Actions" /></Tr></Thead>
      <Tbody>
        {hosts.map((h) => (
          <Tr key={h.origin} data-origin={h.origin} data-state={h.state} className="vh-host">
            <Td><StateLabel s={h.state} /><div className="vh-detail">{h.detail}</div></Td><Td>{h.network}</Td><Td>{h.mac}</Td><Td>{h.ip}</Td><Td>{h.name ?? "–"}</Td>
            <Td><code>{h.origin}</code></Td><Td>{actions(h)}</Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

function Diags({ diags, id }: { diags: Diagnostic[]; id?: string }) {
  return (
    <ul id={id} className="vh-diags">
      {diags.map((d, i) => (
        <li key={i} className={`vh-diag vh-diag-${d.severity}`}>
          <Label color={d.severity === "error" ? "red" : "orange"}>{d.severity}</Label> <code>{where(d)}</code> {d.message} <small>({d.code})</small>
          {d.hint ? <div className="vh-hint">hint: {d.hint}</div> : null}
        </li>
      ))}
    </ul>
  );
}

function StagedView({ staged, busy, onSave, onCancel }: { staged: Staged; busy: string | null; onSave: (s: Staged) => void; onCancel: () => void }) {
  const changes = staged.plan.families.filter((f) => !f.inSync);
  return (
    <div id="vh-staged">
      {staged.block.length > 0 ? (
        <Alert id="vh-check-errors" variant="danger" isInline title={`virt-hooks check refuses this change (${staged.what}): nothing was written`}>
          <Diags diags={staged.block} />
        </Alert>
      ) : (
        <Alert id="vh-plan" variant="info" isInline title={`virt-hooks check: OK. Plan for ${staged.what}`}>
          {changes.length === 0 ? <p>The firewall would not change.</p> : changes.map((f) => (
            <div key={f.family}><p>IPv{f.family} ({f.backend}): {f.added} rule(s) added, {f.removed} removed.</p>
              {f.transaction ? <ExpandableSection toggleText="Transaction"><pre className="vh-out">{f.transaction}</pre></ExpandableSection> : null}</div>
          ))}
          {staged.diags.length > 0 && <Diags diags={staged.diags} />}
        </Alert>
      )}
      <ActionGroup>
        <Button id="vh-save" variant="primary" isDisabled={staged.block.length > 0 || !!busy} isLoading={busy === "save" || busy === "apply"} onClick={() => onSave(staged)}>Save and apply</Button>
        <Button variant="link" onClick={onCancel}>Cancel</Button>
      </ActionGroup>
    </div>
  );
}

function EditForm({ edit, busy, formErr, staged, onCheck, onCancel, onSave }: {
  edit: Edit; busy: string | null; formErr: string | null; staged: Staged | null;
  onCheck: (content: string, what: string) => void; onCancel: () => void; onSave: (s: Staged) => void;
}) {
  const f0 = edit.kind === "forward" && edit.text ? parseForward(edit.text) : null;
  const h0 = edit.kind === "host" && edit.text ? parseHost(edit.text) : null;
  const [proto, setProto] = useState(f0?.proto ?? "tcp");
  const [hostPort, setHostPort] = useState(f0?.hostPort ?? "");
  const [guest, setGuest] = useState(f0?.guest ?? "");
  const [guestPort, setGuestPort] = useState(f0?.guestPort ?? "");
  const [network, setNetwork] = useState(h0?.network ?? "default");
  const [mac, setMac] = useState(h0?.mac ?? "");
  const [ip, setIp] = useState(h0?.ip ?? "");
  const [name, setName] = useState(h0?.name ?? "");
  const [local, setLocal] = useState<string | null>(null);

  const submit = (e?: React.FormEvent) => {
    e?.preventDefault(); setLocal(null);
    try {
      const line = edit.kind === "forward" ? forwardLine({ proto, hostPort, guest, guestPort }) : hostLine({ network, mac, ip, name });
      const content = edit.line && edit.text ? editLine(edit.snap.content ?? "", edit.line, edit.text, line) : addLine(edit.snap.content, line);
      onCheck(content, edit.line ? `edit line ${edit.line}: ${line}` : `add: ${line}`);
    } catch (x: any) { setLocal(String(x?.message ?? x)); }
  };
  const title = `${edit.line ? "Edit" : "Add"} ${edit.kind === "forward" ? "forward" : "fixed address"} in ${OWN_FILE}${edit.line ? `:${edit.line}` : ""}`;
  return (
    <Card id="vh-form" isFlat className="vh-form">
      <CardTitle>{title}</CardTitle>
      <CardBody>
        <Form isHorizontal onSubmit={submit}>
          {edit.kind === "forward" ? (<>
            <FormGroup label="Protocol" fieldId="vh-proto"><FormSelect id="vh-proto" value={proto} onChange={(_e, v) => setProto(v)}>
              <FormSelectOption value="tcp" label="tcp" /><FormSelectOption value="udp" label="udp" /></FormSelect></FormGroup>
            <FormGroup label="Host port" fieldId="vh-host-port"><TextInput id="vh-host-port" value={hostPort} onChange={(_e, v) => setHostPort(v)} placeholder="2022 or 8000-8010" /></FormGroup>
            <FormGroup label="Guest (domain)" fieldId="vh-guest"><TextInput id="vh-guest" value={guest} onChange={(_e, v) => setGuest(v)} placeholder="web" /></FormGroup>
            <FormGroup label="Guest port" fieldId="vh-guest-port"><TextInput id="vh-guest-port" value={guestPort} onChange={(_e, v) => setGuestPort(v)} placeholder="22" /></FormGroup>
          </>) : (<>
            <FormGroup label="Network" fieldId="vh-net"><TextInput id="vh-net" value={network} onChange={(_e, v) => setNetwork(v)} /></FormGroup>
            <FormGroup label="MAC" fieldId="vh-mac"><TextInput id="vh-mac" value={mac} onChange={(_e, v) => setMac(v)} placeholder="52:54:00:aa:bb:cc" /></FormGroup>
            <FormGroup label="Address" fieldId="vh-ip"><TextInput id="vh-ip" value={ip} onChange={(_e, v) => setIp(v)} placeholder="192.168.122.10" /></FormGroup>
            <FormGroup label="Name" fieldId="vh-name"><TextInput id="vh-name" value={name} onChange={(_e, v) => setName(v)} placeholder="(optional)" /></FormGroup>
          </>)}
          {local && <Alert id="vh-form-error" variant="danger" isInline isPlain title={local} />}
          {formErr && <Alert id="vh-form-error2" variant="danger" isInline isPlain title={formErr} />}
          <ActionGroup>
            <Button id="vh-check" type="submit" variant="secondary" isLoading={busy === "check"} isDisabled={!!busy}>Check</Button>
            <Button variant="link" onClick={onCancel}>Cancel</Button>
          </ActionGroup>
        </Form>
        {staged && <StagedView staged={staged} busy={busy} onSave={onSave} onCancel={onCancel} />}
      </CardBody>
    </Card>
  );
}

const mount = () => createRoot(document.getElementById("app")!).render(<App />);
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount); else mount();
