import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PlaneCertificates {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
  /** The apiserver's client pair for kubelets (exec, logs); group system:masters. */
  kubeletClientCert: string;
  kubeletClientKey: string;
}

/**
 * Names the serving certificate covers beyond 127.0.0.1 and localhost: for a
 * plane that pods reach, the advertised node IP, the first service IP and the
 * `kubernetes` Service's DNS names, which in-cluster clients verify.
 */
export interface ServingNames {
  ips: string[];
  dnsNames: string[];
}

/**
 * Writes a throw-away PKI into `dir`: a CA, the apiserver's serving pair for
 * 127.0.0.1, an admin client pair in group system:masters, and the
 * service-account signing keys. node:crypto cannot issue X.509 certificates,
 * so the certificates come from the openssl command line.
 */
export async function writeCertificates(dir: string, serving: ServingNames = { ips: [], dnsNames: ['kubernetes.default.svc'] }): Promise<PlaneCertificates> {
  const path = (name: string): string => join(dir, name);
  const files: PlaneCertificates = {
    caCert: path('ca.crt'),
    servingCert: path('apiserver.crt'),
    servingKey: path('apiserver.key'),
    adminCert: path('admin.crt'),
    adminKey: path('admin.key'),
    serviceAccountPublicKey: path('sa.pub'),
    serviceAccountPrivateKey: path('sa.key'),
    kubeletClientCert: path('apiserver-kubelet-client.crt'),
    kubeletClientKey: path('apiserver-kubelet-client.key'),
  };
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path('ca.key'), '-out', files.caCert, '-days', '7', '-subj', '/CN=ha-operator-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const altNames = [...['127.0.0.1', ...serving.ips].map((ip) => `IP:${ip}`), ...['localhost', ...serving.dnsNames].map((name) => `DNS:${name}`)];
  await issue(dir, 'apiserver', '/CN=kube-apiserver', [`subjectAltName=${altNames.join(',')}`, 'extendedKeyUsage=serverAuth']);
  await issueClient(dir, 'admin', 'ha-operator-admin', 'system:masters');
  await issueClient(dir, 'apiserver-kubelet-client', 'kube-apiserver-kubelet-client', 'system:masters');

  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(files.serviceAccountPublicKey, publicKey, { mode: 0o600 });
  await writeFile(files.serviceAccountPrivateKey, privateKey, { mode: 0o600 });
  return files;
}

/**
 * A client pair `<name>.crt`/`<name>.key` in `dir`, signed by the plane's CA
 * (`ca.crt`/`ca.key` there): the apiserver reads CN as the user, O as its group.
 */
export function issueClient(dir: string, name: string, user: string, group?: string): Promise<void> {
  return issue(dir, name, `${group ? `/O=${group}` : ''}/CN=${user}`, ['extendedKeyUsage=clientAuth']);
}

/** A serving pair for `ips`, signed by the plane's CA (a kubelet's, say). */
export function issueServing(dir: string, name: string, commonName: string, ips: string[]): Promise<void> {
  return issue(dir, name, `/CN=${commonName}`, [`subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}`, 'extendedKeyUsage=serverAuth']);
}

async function issue(dir: string, name: string, subject: string, extensions: string[]): Promise<void> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', csr, '-subj', subject]);
  await writeFile(extFile, extensions.join('\n') + '\n');
  await openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    // A random serial rather than -CAcreateserial's shared ca.srl, which two signings at once corrupt.
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '7', '-out', join(dir, `${name}.crt`), '-extfile', extFile]);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') {
      throw new Error('the openssl command is missing: install it (apt-get install openssl) and run again', { cause: error });
    }
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`, { cause: error });
  }
}
