import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { conflict, invalid, notFound } from '../../core/internal.js';
import { ErrorKind, isMandateError, MandateError, type Logger } from '../../core/index.js';
import { toHex } from '../../encoding/index.js';
import {
  Authority,
  authorize,
  chainFromCredential,
  ChainVerifier,
  decodeChain,
  decodeCredential,
  delegate,
  parseConstraint,
  parseEnrollmentTicket,
  type EnrollmentTicket,
  credentialRevocationId,
  identityScope,
  TRUST_SCOPE_ALL,
  verifyChain,
  type Constraint,
  type VerifiedChain,
} from '../../credentials/index.js';
import { encodeConstraintValue, RESERVED_PREFIX } from '../../credentials/internal.js';
import { compareHistories, HistoryRelation } from '../../identity/internal.js';
import {
  isIdentifier,
  verifyChangeHistory,
  parseIdentifier,
  Purpose,
  type Identifier,
  type KnownIdentity,
  type VerifiedIdentity,
} from '../../identity/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import {
  ENROLLMENT_SERVICE_ADDRESS,
  EnrollmentService,
  redeemTicketOverChannel,
  type DenySetWatcher,
} from '../../node/index.js';
import type { Home } from '../home.js';
import type { CliContext } from '../context.js';
import { readBytesArgument } from '../input.js';
import { EXIT_CODES, formatFields } from '../output.js';
import { collect, parseDuration, parsePositiveInteger } from '../parse.js';
import {
  connectRoute,
  listenTcp,
  parseDialRoute,
  toListener,
  untilSignal,
} from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import {
  attributesOf,
  chainSummary,
  checkOutputFile,
  DEFAULT_AUTHORITY,
  parseConstraints,
  readChain,
  requireLocal,
  verification,
  writeOrPrint,
} from '../chains.js';

const DEFAULT_MEMBER = 'member';
/** Revoked identities stay on the deny-set this long (they have no expiry of their own). */
const IDENTITY_REVOCATION_SECONDS = 10 * 365 * 86_400;
/** A revoked credential or link expires at the latest this long after revocation. */
const LINK_REVOCATION_SECONDS = 30 * 86_400;

function humanChain(chain: VerifiedChain): string {
  const steps = chain.steps
    .map(
      (s, i) =>
        `  ${i === 0 ? 'root' : `link ${i}`}: ${s.issuer} → ${s.subject}${s.purpose === '' || i === 0 ? '' : ` "${s.purpose}"`}${s.constraints.length > 0 ? `\n    ${s.constraints.join('  ')}` : ''}`,
    )
    .join('\n');
  return [
    formatFields([
      ['actor', chain.actor],
      ['authority', chain.root.issuer],
      ['expires', new Date(chain.expiresAt * 1000).toISOString()],
      ['remaining depth', chain.remainingDepth],
    ]),
    steps,
  ].join('\n');
}

export function registerCredentialCommands(program: Command, context: () => CliContext): void {
  // --- tickets ---------------------------------------------------------------------------------
  const ticket = program.command('ticket').description('one-time enrollment tickets');
  ticket
    .command('create')
    .description('create an enrollment ticket (the code is shown once and stored only as a hash)')
    .option(
      '--attr <constraint>',
      'attribute the member gets, e.g. tools=read_orders or refund<=100 (repeatable)',
      collect,
    )
    .option('--ttl <duration>', 'how long the ticket is valid', '10m')
    .option('--uses <n>', 'how many identities may redeem it', '1')
    .option('--enroller', 'the member may create tickets in turn (authority only)')
    .option('--by <name>', 'the enroller creating the ticket (default: the authority)')
    .option('--authority <name>', 'the authority identity', DEFAULT_AUTHORITY)
    .option(
      '--route <route>',
      'where redeemers reach `authority start`, e.g. /ip4/127.0.0.1/tcp/4200 (default: none, redeem in this home only)',
      '',
    )
    .action(
      async (opts: {
        attr?: string[];
        ttl: string;
        uses: string;
        enroller?: boolean;
        by?: string;
        authority: string;
        route: string;
      }) => {
        const ctx = context();
        const attributes = attributesOf(parseConstraints(opts.attr));
        // A ticket must not carry a route its redeemer cannot dial.
        if (opts.route !== '') parseDialRoute(opts.route);
        const home = await ctx.openHome();
        try {
          const authority = home.authority(opts.authority, opts.route);
          const by =
            opts.by === undefined
              ? await authority.identifier()
              : (await home.identities.get(opts.by)).identity.identifier;
          const text = await authority.createTicket(by, {
            attributes,
            enroller: opts.enroller === true,
            ttlSeconds: parseDuration(opts.ttl, '--ttl'),
            uses: parsePositiveInteger(opts.uses, '--uses'),
            nowSeconds: ctx.clock.nowSeconds(),
          });
          ctx.out.result({ ticket: text }, () => text);
        } finally {
          home.close();
        }
      },
    );

  ticket
    .command('redeem')
    .argument('<ticket>', 'the ticket text')
    .option('--identity <name>', 'the local identity that enrolls (default `member`)')
    .option('--name <name>', 'the same as --identity')
    .option('--out <file>', 'write the credential (as a chain of length 0) here')
    .description(
      'enroll with a ticket: become a member and receive a first credential, from the authority in this home or over the network at the ticket’s route',
    )
    .action(async (text: string, opts: { identity?: string; name?: string; out?: string }) => {
      const ctx = context();
      if (opts.identity !== undefined && opts.name !== undefined && opts.identity !== opts.name)
        throw invalid(
          'ERR_ARGUMENT_INVALID',
          '`--identity` and `--name` name different identities',
        );
      const name = opts.identity ?? opts.name ?? DEFAULT_MEMBER;
      const parsed = parseEnrollmentTicket(text.trim());
      // Redeeming uses the ticket up: make sure the credential can be written before that.
      checkOutputFile(opts.out);
      const home = await ctx.openHome();
      try {
        const local = await home.identities.find(parsed.authority.identifier);
        // The ticket brought the trust anchor, for the enrolled identity only: its own credential
        // and chains (renewal, delegation) verify; the home's other verifiers do not trust that
        // authority until `mandate trust add` says so.
        const trust = async (authorityHistory: Uint8Array, enrolled: Identifier): Promise<void> => {
          await home.identities.import(authorityHistory);
          await home.trustAnchors.addTrustAnchor({
            identifier: parsed.authority.identifier,
            scope: identityScope(enrolled),
            addedAt: ctx.clock.nowSeconds(),
          });
        };
        let member: VerifiedIdentity;
        let credential: Uint8Array;
        if (local?.primaryKeyId != null) {
          // The authority is in this home: redeem in process, all or nothing. The identity this
          // creates, the used ticket, the membership and the trust anchor commit together, so a
          // refused redemption leaves no identity behind.
          ({ member, credential } = await home.store.database.transaction(async () => {
            const known =
              (await home.identities.find(name)) ?? (await home.identities.create({ name }));
            // As over the network: a revoked member or authority enrolls nothing.
            const now = ctx.clock.nowSeconds();
            (await home.denySet(now)).assertNoneRevoked(
              [known.identity.identifier, parsed.authority.identifier],
              now,
            );
            const authority = home.authority(parsed.authority.identifier, parsed.route);
            const enrolled = await authority.redeem(
              { code: parsed.code, changeHistory: known.identity.changeHistory },
              ctx.clock.nowSeconds(),
            );
            await trust(parsed.authority.changeHistory, known.identity.identifier);
            return { member: known.identity, credential: enrolled.credential };
          }));
        } else {
          // The network path creates nothing, and holds no transaction while it waits.
          const redeemed = await redeemOverNetwork(ctx, home, parsed, local?.identity, name);
          ({ member, credential } = redeemed);
          await home.store.database.transaction(() =>
            trust(redeemed.authority.changeHistory, redeemed.member.identifier),
          );
        }
        const chain = chainFromCredential(credential, member);
        writeOrPrint(
          ctx,
          opts.out,
          chain,
          { member: member.identifier, authority: parsed.authority.identifier },
          `enrolled ${member.identifier} with ${parsed.authority.identifier}`,
        );
      } finally {
        home.close();
      }
    });

  // --- credentials -----------------------------------------------------------------------------
  const credential = program
    .command('credential')
    .description('issue, show and verify credentials');
  credential
    .command('issue')
    .requiredOption('--to <identity>', 'subject: a name or identifier this home knows')
    .option(
      '--attr <constraint>',
      'attribute, e.g. tools=read_orders,issue_refund or issue_refund#amount<=1000 (repeatable; without tools=… no action is allowed)',
      collect,
    )
    .option('--ttl <duration>', 'lifetime (default 1h, at most 1d: longer is refused)')
    .option('--out <file>', 'write the credential (as a chain of length 0) here')
    .option('--authority <name>', 'the issuing authority', DEFAULT_AUTHORITY)
    .description(
      'issue a credential from the authority: the subject becomes a member with these attributes',
    )
    .action(
      async (opts: {
        to: string;
        attr?: string[];
        ttl?: string;
        out?: string;
        authority: string;
      }) => {
        const ctx = context();
        const attributes = attributesOf(parseConstraints(opts.attr));
        // Parsed before anything is stored: a bad TTL must not leave the membership changed.
        const ttl = opts.ttl === undefined ? {} : { ttlSeconds: parseDuration(opts.ttl, '--ttl') };
        checkOutputFile(opts.out);
        const home = await ctx.openHome();
        try {
          const subject = (await home.identities.get(opts.to)).identity;
          const authority = home.authority(opts.authority);
          // Refused before the membership changes, not cut short after.
          if (ttl.ttlSeconds !== undefined) authority.checkCredentialTtl(ttl.ttlSeconds);
          const authorityId = await authority.identifier();
          // Neither a revoked subject nor a revoked authority gets a credential from this home.
          const now = ctx.clock.nowSeconds();
          (await home.denySet(now)).assertNoneRevoked([subject.identifier, authorityId], now);
          // Issuing sets the member's attributes; an enroller stays an enroller.
          const existing = await authority.member(subject.identifier);
          await authority.addMember(authorityId, subject.identifier, attributes, {
            nowSeconds: ctx.clock.nowSeconds(),
            enroller: existing?.enroller ?? false,
          });
          const bytes = await authority.issueCredential(
            subject.identifier,
            ctx.clock.nowSeconds(),
            ttl,
          );
          const chain = chainFromCredential(bytes, subject);
          const decoded = decodeCredential(bytes);
          // issueCredential ends a credential no later than the issuer's key attestation.
          const requested = ttl.ttlSeconds ?? authority.policy.defaultCredentialTtlSeconds;
          if (decoded.expiresAt - decoded.createdAt < requested)
            ctx.out.note(
              `note: the credential expires ${new Date(decoded.expiresAt * 1000).toISOString()}, sooner than asked: the authority's credential key attestation ends then`,
            );
          writeOrPrint(
            ctx,
            opts.out,
            chain,
            {
              subject: subject.identifier,
              issuer: authorityId,
              expiresAt: decoded.expiresAt,
              revocationId: credentialRevocationId(decoded),
            },
            `issued to ${subject.identifier}, expires ${new Date(decoded.expiresAt * 1000).toISOString()}`,
          );
        } finally {
          home.close();
        }
      },
    );

  credential
    .command('show')
    .argument('<file>', 'a credential or chain: HEX, a FILE, or - for stdin')
    .description('decode without verifying')
    .action(async (file: string) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const decoded = decodeChain(await readChain(home, file));
        const root = decodeCredential(decoded.root);
        const revocationId = credentialRevocationId(root);
        const attributes = Object.fromEntries(
          [...root.attributes].map(([k, v]) => [k, new TextDecoder().decode(v)]),
        );
        ctx.out.result(
          {
            subject: root.subject,
            attributes,
            createdAt: root.createdAt,
            expiresAt: root.expiresAt,
            links: decoded.links.length,
            revocationId,
          },
          () =>
            formatFields([
              ['subject', root.subject],
              ['created', new Date(root.createdAt * 1000).toISOString()],
              ['expires', new Date(root.expiresAt * 1000).toISOString()],
              ['revocation id', revocationId],
              ['links', decoded.links.length],
              ...Object.entries(attributes).map(([k, v]): [string, string] => [`  ${k}`, v]),
            ]),
        );
      } finally {
        home.close();
      }
    });

  const verifyAction = async (file: string, opts: { presenter?: string }): Promise<void> => {
    const ctx = context();
    const home = await ctx.openHome();
    try {
      const bytes = await readChain(home, file);
      const presenter =
        opts.presenter === undefined ? undefined : await resolveIdentifier(home, opts.presenter);
      const chain = new ChainVerifier(
        await verification(home, ctx.clock.nowSeconds(), bytes, presenter),
      ).verify(bytes, {
        nowSeconds: ctx.clock.nowSeconds(),
        ...(presenter === undefined ? {} : { presenter }),
      });
      ctx.out.result({ valid: true, ...chainSummary(chain) }, () => `valid\n${humanChain(chain)}`);
    } finally {
      home.close();
    }
  };
  credential
    .command('verify')
    .argument('<file>')
    .option('--presenter <identity>', 'who presents it')
    .description('verify against this home’s trusted authorities and deny-set')
    .action(verifyAction);

  // --- revocation ------------------------------------------------------------------------------
  program
    .command('revoke')
    .argument('<id>', 'a revocation id (32 hex digits), an identifier, or a local identity name')
    .addHelpText(
      'after',
      '\nA revocation id names one credential or link, derived from its signed bytes: this home cannot\ntell which until a chain carrying it is presented, and refuses that chain from then on. An\nidentifier this home has never seen is recorded too (a chain from elsewhere may carry it), with a\nnote on stderr.',
    )
    .option('--reason <text>', 'why (kept with the entry)')
    .description(
      'revoke a credential or link (and every chain through it), or an identity (everything it issued or holds)',
    )
    .action(async (ref: string, opts: { reason?: string }) => {
      const ctx = context();
      const now = ctx.clock.nowSeconds();
      const home = await ctx.openHome();
      try {
        let id = ref;
        let identity = isIdentifier(ref);
        if (!identity && !/^[0-9a-f]{32}$/.test(ref)) {
          // A local name stands for its identifier (never a guess: the name must exist here).
          const named = await home.identities.find(ref);
          if (named === undefined)
            throw invalid(
              'ERR_ARGUMENT_INVALID',
              `\`${ref}\` is neither a revocation id (32 lowercase hex digits), an identifier (\`I\` + 64 hex digits) nor an identity of this home`,
            );
          id = named.identity.identifier;
          identity = true;
        }
        const known = identity ? (await home.identities.find(id)) !== undefined : undefined;
        const update = await home.denySetRepository.append(
          [
            {
              kind: identity ? 'identity' : 'revocation-id',
              id,
              revokedAt: now,
              expiresAt: now + (identity ? IDENTITY_REVOCATION_SECONDS : LINK_REVOCATION_SECONDS),
              ...(opts.reason === undefined ? {} : { reason: opts.reason }),
            },
          ],
          now,
        );
        // Recorded even when this home has never seen it (a chain from elsewhere may carry it),
        // but said plainly, so a mistyped id is noticed.
        if (identity && known === false)
          ctx.out.note(
            `note: \`${id}\` is not an identity this home knows; recorded anyway, so any chain or peer carrying it is refused here`,
          );
        ctx.out.result(
          {
            revoked: id,
            kind: identity ? 'identity' : 'revocation-id',
            known,
            sequence: update.toSequence,
          },
          () => `revoked ${id} (deny-set sequence ${update.toSequence})`,
        );
      } finally {
        home.close();
      }
    });

  // --- delegation ------------------------------------------------------------------------------
  program
    .command('delegate')
    .requiredOption('--chain <file>', 'the chain to extend (a credential is a chain of length 0)')
    .requiredOption('--from <name>', 'the local identity delegating: the chain’s last subject')
    .requiredOption('--to <identity>', 'the identity delegated to (name or identifier known here)')
    .option(
      '--constraint <constraint>',
      'narrowing, e.g. tools=read_orders or issue_refund#amount<=100 (repeatable)',
      collect,
    )
    .option('--purpose <text>', 'why, e.g. "resolve complaint #4471"')
    .option('--ttl <duration>', 'lifetime of the link (default: the parent’s)')
    .option('--depth <n>', 'remaining depth after this link (default: one less than allowed)')
    .option('--out <file>', 'write the longer chain here')
    .description('delegate a narrower part of a chain to another identity')
    .action(
      async (opts: {
        chain: string;
        from: string;
        to: string;
        constraint?: string[];
        purpose?: string;
        ttl?: string;
        depth?: string;
        out?: string;
      }) => {
        const ctx = context();
        const constraints = parseConstraints(opts.constraint);
        const depth = opts.depth === undefined ? undefined : parseDepth(opts.depth);
        const home = await ctx.openHome();
        try {
          const now = ctx.clock.nowSeconds();
          const parent = await readChain(home, opts.chain);
          const from = await home.identities.get(opts.from);
          // The delegator holds the chain: an authority trusted for it alone counts here. What
          // this home knows is read once and serves both verifications below.
          const known = await verification(home, now, parent, from.identity.identifier);
          const chain = verifyChain(parent, { nowSeconds: now, ...known });
          const subject = (await home.identities.get(opts.to)).identity;
          const { verified, keyId } = await home.identities.purposeKey(from, Purpose.credentials);
          const longer = await delegate(
            home.vault,
            {
              identity: from.identity,
              credentialKeyId: keyId,
              credentialKeyAttestation: verified.attestation,
            },
            chain,
            {
              nowSeconds: now,
              constraints,
              subject,
              ...(opts.purpose === undefined ? {} : { purpose: opts.purpose }),
              ...(opts.ttl === undefined ? {} : { ttlSeconds: parseDuration(opts.ttl, '--ttl') }),
              ...(depth === undefined ? {} : { depth }),
            },
          );
          // The longer chain is checked like any verifier would, deny-set included: delegating
          // to a revoked identity fails here instead of producing a chain that never verifies.
          const extended = verifyChain(longer, {
            nowSeconds: now,
            ...known,
            knownIdentities: new Map([
              ...known.knownIdentities,
              ...chain.identities,
              [subject.identifier, subject],
            ]),
          });
          writeOrPrint(
            ctx,
            opts.out,
            longer,
            chainSummary(extended),
            `delegated to ${subject.identifier} (link ${extended.links.length}, revocation id ${extended.links.at(-1)?.revocationId ?? ''})`,
          );
        } finally {
          home.close();
        }
      },
    );

  const chainCommand = program
    .command('chain')
    .description('verify delegation chains and check requests against them');
  chainCommand
    .command('verify')
    .argument('<file>')
    .option('--presenter <identity>', 'who presents it')
    .description('verify a chain offline')
    .action(verifyAction);
  chainCommand
    .command('check')
    .argument('<file>')
    .requiredOption('--action <tool>', 'the action (tool) requested')
    .option('--arg <k=v>', 'an argument of the request (repeatable)', collect)
    .option(
      '--presenter <identity>',
      'who presents it: the chain must end with this identity (without it, see below)',
    )
    .description('may this chain do ACTION with these arguments? prints the decision and why')
    .addHelpText(
      'after',
      '\nWithout --presenter the chain is checked as a bearer token: anyone holding the file passes,\nsince nothing proves that the caller is the chain’s last subject. A gate must check who\npresents it (over a secure channel, the channel’s verified peer).',
    )
    .action(async (file: string, opts: { action: string; arg?: string[]; presenter?: string }) => {
      const ctx = context();
      const args = new Map<string, string>();
      for (const pair of opts.arg ?? []) {
        const at = pair.indexOf('=');
        if (at <= 0)
          throw invalid('ERR_ARGUMENT_INVALID', `\`--arg\` must be k=v, not \`${pair}\``);
        const name = pair.slice(0, at);
        // One value per argument: with two, whichever a tool reads could be the one not checked.
        if (args.has(name))
          throw invalid('ERR_ARGUMENT_INVALID', `\`--arg ${name}\` is given more than once`);
        args.set(name, pair.slice(at + 1));
      }
      const home = await ctx.openHome();
      try {
        const now = ctx.clock.nowSeconds();
        const denySet = await home.denySet(now);
        const bytes = await readChain(home, file);
        const presenter =
          opts.presenter === undefined ? undefined : await resolveIdentifier(home, opts.presenter);
        const chain = new ChainVerifier({
          ...(await verification(home, now, bytes, presenter)),
          denySet,
        }).verify(bytes, {
          nowSeconds: now,
          ...(presenter === undefined ? {} : { presenter }),
        });
        const decision = authorize(
          chain,
          { action: opts.action, args, nowSeconds: now },
          { denySet },
        );
        if (opts.presenter === undefined)
          ctx.out.note(
            `warning: no --presenter: checked as a bearer token, anyone holding this chain would pass as ${chain.actor}`,
          );
        ctx.out.result(decision, () =>
          [
            `${decision.decision.toUpperCase()}: ${decision.actor} ${opts.action}`,
            ...decision.chain.map(
              (s, i) =>
                `  ${i === 0 ? 'root' : `link ${i}`}: ${s.issuer} → ${s.subject}${i > 0 && s.purpose !== '' ? ` "${s.purpose}"` : ''}  ${s.constraints.join('  ')}`,
            ),
            ...(decision.decision === 'deny'
              ? [
                  `denied at ${decision.failed.link === 0 ? 'the root credential' : `link ${decision.failed.link}`}${decision.failed.constraint === null ? '' : `, constraint \`${decision.failed.constraint}\``}: ${decision.failed.reason}`,
                ]
              : []),
          ].join('\n'),
        );
        // A denial is an answer, not an error; scripts read the exit code (that of `forbidden`).
        if (decision.decision === 'deny') ctx.out.exitCode = EXIT_CODES.forbidden;
      } finally {
        home.close();
      }
    });
}

/** `--depth`: 0 to 99, digits only (parseInt would read `1x` as 1 and `x` as NaN). */
function parseDepth(text: string): number {
  if (!/^(?:0|[1-9]\d?)$/.test(text))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`--depth\` must be an integer from 0 to 99, not \`${text}\``,
    );
  return Number(text);
}

async function resolveIdentifier(home: Home, ref: string): Promise<Identifier> {
  if (isIdentifier(ref)) return ref;
  if (/^[0-9a-f]{64}$/.test(ref)) return parseIdentifier(`I${ref}`);
  return (await home.identities.get(ref)).identity.identifier;
}

/** Logs warnings and errors on stderr; a one-shot command's progress is its result. */
function warningLogger(): Logger {
  return { ...stderrLogger(), info: () => undefined };
}

/**
 * `ticket redeem` when the authority is not in this home: a secure channel to the ticket's route
 * that trusts only the ticket's authority, the code through it, and a credential that must verify
 * against that authority with `name` as its subject. Nothing is written here; the caller stores
 * the result. Everything that can fail locally is checked before the code leaves this process.
 */
async function redeemOverNetwork(
  ctx: CliContext,
  home: Home,
  ticket: EnrollmentTicket,
  localAuthority: VerifiedIdentity | undefined,
  name: string,
): Promise<{ member: VerifiedIdentity; credential: Uint8Array; authority: VerifiedIdentity }> {
  const authorityId = ticket.authority.identifier;
  if (ticket.route === '')
    throw new MandateError(
      'ERR_TICKET_AUTHORITY_UNREACHABLE',
      ErrorKind.unavailable,
      `authority \`${authorityId}\` is not in this home and the ticket names no route to it`,
    );
  parseDialRoute(ticket.route);
  // The network path creates nothing: the identity must exist (`identity create`) with its key.
  const known = await home.identities.get(name).catch((error: unknown) => {
    if (!isMandateError(error, 'ERR_IDENTITY_NOT_FOUND')) throw error;
    throw notFound(
      'ERR_IDENTITY_NOT_FOUND',
      `no identity \`${name}\`: create it first (\`mandate identity create --name ${name}\`)`,
    );
  });
  const primaryKeyId = requireLocal(known, name);
  // What this home knows of the authority counts: a newer history is expected from it, and a
  // history that forks from the ticket's stops here, before anything is sent.
  let authority = ticket.authority;
  if (localAuthority !== undefined) {
    const relation = compareHistories(ticket.authority, localAuthority);
    if (relation === HistoryRelation.conflict)
      throw conflict(
        'ERR_IDENTITY_HISTORY_FORK',
        `the ticket's history of \`${authorityId}\` diverges from the one this home knows`,
      );
    if (relation === HistoryRelation.newer) authority = localAuthority;
  }
  const logger = warningLogger();
  const router = new Router({ logger });
  try {
    // Silent: a connection that fails is the command's error, not a warning besides it.
    const transport = new TcpTransport(router);
    const prepared = await prepareChannelIdentity(home.vault, {
      identity: known.identity,
      primaryKeyId,
      nowSeconds: ctx.clock.nowSeconds(),
    });
    const anchors = new Map([[authorityId, authority]]);
    const denySet = await home.denySet(ctx.clock.nowSeconds());
    // Only the ticket's authority may answer (and not one this home revoked): anyone else
    // listening at the route fails the handshake, and the code is never sent to it.
    const channel = await openSecureChannel(
      router,
      toListener(connectRoute(transport, ticket.route)),
      {
        ...prepared,
        verify: {
          authorities: anchors,
          knownIdentities: anchors,
          trustPolicy: TrustPolicies.identifier(authorityId),
          denySet,
        },
        clock: ctx.clock,
        logger,
      },
    ).catch((error: unknown) => {
      if (!isMandateError(error, 'ERR_CHANNEL_PEER_REJECTED')) throw error;
      // With a cause, this side refused the peer; without, the peer refused this side.
      throw new MandateError(
        error.code,
        error.kind,
        error.cause === undefined
          ? `the authority at \`${ticket.route}\` refused identity \`${name}\``
          : `the node at \`${ticket.route}\` is not the ticket's authority \`${authorityId}\` (or failed to prove it)`,
        { cause: error.cause },
      );
    });
    try {
      const redeemed = await redeemTicketOverChannel(router, channel, ticket.code, {
        authority,
        subject: known.identity,
        clock: ctx.clock,
      });
      return {
        member: known.identity,
        credential: redeemed.credential,
        authority: redeemed.authority,
      };
    } finally {
      await channel.close();
    }
  } finally {
    await router.close();
  }
}
