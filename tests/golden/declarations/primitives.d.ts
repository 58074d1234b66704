/** Who to create. Comments end with *\/ so it must be escaped. */
interface CreateUserInput {
  /** Login e-mail @format email */
  email: string;
  /** @minLength 3 @maxLength 20 @pattern ^[a-z0-9_]+$ */
  handle: string;
  /** @integer @minimum 13 @exclusiveMaximum 150 */
  age?: number;
  /** @exclusiveMinimum 0 @multipleOf 0.5 */
  height?: number;
  /** @default false */
  admin?: boolean;
  nothing?: null;
  /** Either the numeric id or the name */
  id_or_name?: string | number;
  nickname?: string | null;
  middle_name?: string | null;
  anything?: unknown;
  also_anything?: unknown;
  /** Given name */
  "first-name": string;
  "2fa"?: boolean;
  "with space"?: number;
  $meta?: string;
  /** Use `id_or_name` instead @deprecated */
  legacy_id?: string;
  /** @default "UTC" @example "Europe/Paris" @example "America/New_York" */
  timezone?: string;
  /** @integer @example 3 */
  retries?: number;
  /**
   * Free text.
   * Markdown allowed; a literal *\/ inside stays inside.
   * @maxLength 2000
   */
  bio?: string;
  consent: unknown;
}

/**
 * Create a user account.
 * Returns nothing useful: the id comes by e-mail.
 */
declare function external_create_user(input: CreateUserInput): Promise<unknown>;

type ListUsersInput = Record<string, never>;

type ListUsersOutput = Record<string, unknown>[];

/** All users (takes no arguments) */
declare function external_listUsers(input?: ListUsersInput): Promise<ListUsersOutput>;

interface SearchInput {
  query?: string;
  /** @integer @default 10 */
  limit?: number;
}

type SearchOutput = Record<string, unknown>;

/** Search everything; every field is optional */
declare function external_search(input?: SearchInput): Promise<SearchOutput>;

type PingInput = unknown;

type PingOutput = "pong";

declare function external_ping(input?: PingInput): Promise<PingOutput>;
