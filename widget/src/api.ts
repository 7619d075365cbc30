/** A failed REST call: `status` is the HTTP status, 0 when the network failed. */
export interface Failure {
  status: number;
}

/** POST to the appliance. The visitor session goes in the X-Visitor-Session header; no cookies are sent. */
export async function post<T>(origin: string, path: string, session: string | null, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (session) headers["X-Visitor-Session"] = session;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let reply: Response;
  try {
    reply = await fetch(origin + path, {
      method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body),
      mode: "cors", credentials: "omit", cache: "no-store",
    });
  } catch {
    throw { status: 0 } as Failure;
  }
  if (!reply.ok) throw { status: reply.status } as Failure;
  return (await reply.json()) as T;
}

export const statusOf = (error: unknown): number =>
  typeof error === "object" && error !== null && typeof (error as Failure).status === "number" ? (error as Failure).status : 0;
