import type { Command } from 'commander';
import { conflict, invalid, notFound, unavailable } from '../../core/internal.js';
import { isMandateError, MandateError, type Logger } from '../../core/index.js';
import {
  chainFromCredential,
  identityScope,
  parseEnrollmentTicket,
  type EnrollmentTicket,
} from '../../credentials/index.js';
import { compareHistories, HistoryRelation } from '../../identity/internal.js';
import type { Identifier, VerifiedIdentity } from '../../identity/index.js';
import { openSecureChannel, prepareChannelIdentity, TrustPolicies } from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import { redeemTicketOverChannel } from '../../node/index.js';
import type { Home } from '../home.js';
import type { CliContext } from '../context.js';
import { collect, parseDuration, parsePositiveInteger } from '../parse.js';
import { connectRoute, parseDialRoute, toListener } from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import {
  attributesOf,
  checkOutputFile,
  DEFAULT_AUTHORITY,
  parseConstraints,
  requireLocal,
  writeOrPrint,
} from '../chains.js';

const DEFAULT_MEMBER = 'member';

interface TicketCreateOptions {
  attr?: string[];
  ttl: string;
  uses: string;
  enroller?: boolean;
  by?: string;
  authority: string;
  route: string;
}

interface TicketRedeemOptions {
  identity?: string;
  name?: string;
  out?: string;
}

export function registerTicketCommands(program: Command, context: () => CliContext): void {
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
    .action((opts: TicketCreateOptions) => runTicketCreate(context(), opts));

  ticket
    .command('redeem')
    .argument('<ticket>', 'the ticket text')
    .option('--identity <name>', 'the local identity that enrolls (default `member`)')
    .option('--name <name>', 'the same as --identity')
    .option('--out <file>', 'write the credential (as a chain of length 0) here')
    .description(
      'enroll with a ticket: become a member and receive a first credential, from the authority in this home or over the network at the ticket’s route',
    )
    .action((text: string, opts: TicketRedeemOptions) => runTicketRedeem(context(), text, opts));
}

/** `ticket create`: a one-time enrollment ticket from this home's authority (or an enroller). */
export async function runTicketCreate(ctx: CliContext, opts: TicketCreateOptions): Promise<void> {
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
}

/** `ticket redeem`: enroll with a ticket, in this home or over the network at its route. */
export async function runTicketRedeem(
  ctx: CliContext,
  text: string,
  opts: TicketRedeemOptions,
): Promise<void> {
  if (opts.identity !== undefined && opts.name !== undefined && opts.identity !== opts.name)
    throw invalid('ERR_ARGUMENT_INVALID', '`--identity` and `--name` name different identities');
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
    throw unavailable(
      'ERR_TICKET_AUTHORITY_UNREACHABLE',
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
