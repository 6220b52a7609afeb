-- The 文号 of the city's document adopting a policy that departs from the policy document; '' for one that does
-- not depart (and for every policy stored before).
ALTER TABLE city_policies ADD COLUMN document_number TEXT NOT NULL DEFAULT '';
