// The shapes of the appliance's replies and frames (docs/conversations.md; appliance/conversations/events.py).

export interface Theme {
  primary_color?: string;
  text_color?: string;
  position?: string; // bottom-right | bottom-left
  greeting?: string;
  launcher_text?: string;
  title?: string;
  logo_url?: string;
}

export interface Identity {
  user_id: string;
  email?: string;
  name?: string;
  timestamp: number;
  signature: string;
}

export interface Source {
  title?: string;
  url?: string;
}

export type Role = "customer" | "ai" | "agent";

export interface Message {
  id: number;
  conversation_id: number;
  role: Role;
  content: string;
  client_id: string | null;
  outcome: string | null; // answered | refused | blocked | smalltalk | urgent | notice (AI messages)
  confidence: number | null;
  sources: Source[] | null;
  suggestions?: Source[] | null; // a refusal's articles that may help
  agent: string | null;
  feedback: "up" | "down" | null;
}

/** A conversation's state, as `status` and `history` frames and the REST replies carry it. */
export interface State {
  conversation_id: number;
  status: string; // active | waiting | escalated | resolved | closed
  handled_by: string; // ai | agent
  agent: string | null;
  rated?: boolean;
}

export interface SessionReply {
  session: string;
  expires: number;
  customer_id: number | null;
  theme: Theme | null;
}

/** What sessionStorage keeps for this tab: no message content, ever. */
export interface Stored {
  session: string;
  expires: number; // unix seconds
  conversation_id: number | null;
  last_seen_id: number;
  theme: Theme;
}

export type Frame =
  | { type: "ready"; expires: number; customer_id: number | null }
  | { type: "ack"; client_id: string; message_id: number; conversation_id: number; duplicate: boolean; reply_id: number | null; text: string; answer?: boolean }
  | { type: "no_reply"; conversation_id: number; reply_to: number; reason: string }
  | ({ type: "history"; messages: Message[] } & State)
  | ({ type: "status" } & State)
  | { type: "message"; message: Message }
  | { type: "delta"; conversation_id: number; reply_to: number; text: string }
  | { type: "agent_joined" | "agent_left"; conversation_id: number; agent: string | null }
  | { type: "typing"; conversation_id: number; role: string }
  | { type: "error"; code: string; status: number; message: string; client_id: string | null }
  | { type: "pong" };
