"""SMART App Launch 2.x for the clinician pages: EHR launch and standalone launch.

The app is a SMART client (authorization code with PKCE S256, Authlib's OAuth 2 client).
It reads the launched patient's record from the EHR's FHIR server with the access token,
maps it with the one FHIR reading (:func:`withdrawal.fhir.to_patient`) and shows the
assessment read-only; nothing is stored unless the clinician saves it. See docs/smart.md.
"""

from withdrawal.smart.config import SmartSettings

__all__ = ["SmartSettings"]
